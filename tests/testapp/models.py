"""A stand-in for a host project's order model."""

from django.db import models


class Order(models.Model):
    reference = models.CharField(max_length=32, unique=True)
    email = models.EmailField(blank=True)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.reference

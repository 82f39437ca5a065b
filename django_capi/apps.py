from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoCapiConfig(AppConfig):
    name = "django_capi"
    label = "django_capi"
    verbose_name = _("Meta Conversions API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_capi import checks  # noqa: F401  (registers the system checks)

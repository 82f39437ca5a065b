"""``manage.py capi_rotate_tokens``: re-encrypt stored access tokens with the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from django_capi.datasets.encryption import TokenDecryptionError, rotate_token
from django_capi.models import Dataset


class Command(BaseCommand):
    help = (
        "Re-encrypt the access token of every admin-managed dataset with the first key of "
        "CAPI['ENCRYPTION_KEYS']. Rotation: put the new key first, run this, then remove the "
        "old key. Exits with status 1 (changing nothing) when a token cannot be decrypted "
        "with any configured key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        unreadable: list[str] = []
        rotated = 0
        with transaction.atomic():
            rows = Dataset.objects.select_for_update().exclude(encrypted_access_token="")
            for dataset in rows.order_by("pk"):
                try:
                    ciphertext = rotate_token(dataset.encrypted_access_token)
                except TokenDecryptionError:
                    unreadable.append(dataset.dataset_id)
                    continue
                Dataset.objects.filter(pk=dataset.pk).update(encrypted_access_token=ciphertext)
                rotated += 1
            if unreadable:
                transaction.set_rollback(True)
        if unreadable:
            raise CommandError(
                "These datasets' tokens cannot be decrypted with any key in "
                f"CAPI['ENCRYPTION_KEYS'] (nothing was changed): {', '.join(unreadable)}. "
                "Put the key they were encrypted with back in the list, or paste their tokens "
                "again in the admin.",
                returncode=1,
            )
        self.stdout.write(f"{rotated} access token(s) re-encrypted with the first key.")

"""Re-encrypt every storage connection's credentials with the first ARV_CREDENTIALS_KEYS key."""

from django.core.management.base import BaseCommand
from django.db import transaction

from storage.models import StorageConnection


class Command(BaseCommand):
    help = (
        "Re-encrypt storage credentials with the first key of ARV_CREDENTIALS_KEYS. Run it after putting a new"
        " key first (the old ones after it); then the old keys may be removed."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            connections = list(StorageConnection.objects.select_for_update().order_by("pk"))
            for connection in connections:  # read with any key, written with the first
                connection.save(update_fields=["credentials"])
        self.stdout.write(f"Re-encrypted the credentials of {len(connections)} storage connection(s).")

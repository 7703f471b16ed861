"""Re-encrypt every storage connection's credentials with the first ARV_CREDENTIALS_KEYS key."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from storage.credentials import UnreadableCredentials
from storage.models import StorageConnection


class Command(BaseCommand):
    help = (
        "Re-encrypt storage credentials with the first key of ARV_CREDENTIALS_KEYS. Run it after putting a new"
        " key first (the old ones after it); then the old keys may be removed. Connections whose credentials"
        " no configured key decrypts are named and left as they are (exit status 1 at the end)."
    )

    def handle(self, *args, **options) -> None:
        unreadable: list[StorageConnection] = []
        rotated = 0
        with transaction.atomic():
            for connection in StorageConnection.objects.select_for_update().order_by("pk"):
                try:  # read with any key, written with the first
                    connection.credentials = connection.decrypted_credentials()
                except UnreadableCredentials:
                    unreadable.append(connection)
                    self.stderr.write(
                        f"Connection {connection.pk} ({connection.name!r}): credentials cannot be decrypted with the"
                        " configured keys; left as they are."
                    )
                    continue
                connection.save(update_fields=["credentials"])
                rotated += 1
        self.stdout.write(f"Re-encrypted the credentials of {rotated} storage connection(s).")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} connection(s) have credentials no configured key decrypts: put the key that"
                " encrypted them back into ARV_CREDENTIALS_KEYS, or give them new credentials (API or admin)."
            )

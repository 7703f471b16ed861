from django.apps import AppConfig
from django.core import checks


def check_credentials_keys(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """ARV_CREDENTIALS_KEYS must hold Fernet keys: said at `manage.py check`/`migrate`, not at first use."""
    from django.core.exceptions import ImproperlyConfigured

    from storage.credentials import credentials_fernet

    try:
        credentials_fernet()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="storage.E001")]
    return []


def check_readable_credentials(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Connections whose credentials no configured key decrypts (`check --deploy --database
    default`): their pages work, their checks fail, and rotate_credentials leaves them."""
    if not databases or "default" not in databases:
        return []
    from django.db import DatabaseError

    from storage.credentials import UnreadableCredentials
    from storage.models import StorageConnection

    unreadable = []
    try:
        for connection in StorageConnection.objects.order_by("pk").only("pk", "name", "credentials"):
            try:
                connection.decrypted_credentials()
            except UnreadableCredentials:
                unreadable.append(f"{connection.pk} ({connection.name})")
    except DatabaseError:
        return []  # not migrated yet, or unreachable: other checks say so
    if not unreadable:
        return []
    return [
        checks.Warning(
            f"Storage connections whose credentials cannot be decrypted with the configured keys: {', '.join(unreadable)}.",
            hint="Put the key that encrypted them back into ARV_CREDENTIALS_KEYS, or give them new credentials"
            " (API or admin); their checks fail until then.",
            id="storage.W001",
        )
    ]


class StorageConfig(AppConfig):
    name = "storage"
    verbose_name = "Storage"

    def ready(self) -> None:
        checks.register(check_credentials_keys)
        checks.register(check_readable_credentials, checks.Tags.database, deploy=True)

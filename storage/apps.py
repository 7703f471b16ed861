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


class StorageConfig(AppConfig):
    name = "storage"
    verbose_name = "Storage"

    def ready(self) -> None:
        checks.register(check_credentials_keys)

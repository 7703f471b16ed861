from django.apps import AppConfig
from django.conf import settings

from arv.db import echo


class DatabaseConfig(AppConfig):
    name = "arv.db"
    label = "arv_db"
    verbose_name = "Database connections"

    def ready(self) -> None:
        echo.install(echo=settings.DATABASE_POOL.echo)

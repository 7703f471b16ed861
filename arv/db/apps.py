from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created

from arv.db import echo


def log_every_statement(sender, connection, **kwargs) -> None:
    # DB_ECHO: Django logs SQL to "django.db.backends" only on "debug cursors",
    # which it uses when DEBUG is on; force them on for each new connection.
    connection.force_debug_cursor = True


class DatabaseConfig(AppConfig):
    name = "arv.db"
    label = "arv_db"
    verbose_name = "Database connections"

    def ready(self) -> None:
        # Storage credentials never reach the SQL log (DB_ECHO, or DEBUG with SQL logging on).
        echo.install()
        if settings.DATABASE_POOL.echo:
            connection_created.connect(log_every_statement, dispatch_uid="arv.db.echo")

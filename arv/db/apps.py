from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db.backends.signals import connection_created

from arv import internals
from arv.db import checks as database_checks
from arv.db import echo, replicas
from arv.db.failover import note_new_connection
from arv.db.workers import count_connection, set_unit_deadlines
from arv.web import checks as web_checks


class DatabaseConfig(AppConfig):
    name = "arv.db"
    label = "arv_db"
    verbose_name = "Database connections"

    def ready(self) -> None:
        echo.install(echo=settings.DATABASE_POOL.echo)
        connection_created.connect(set_unit_deadlines, dispatch_uid="arv.db.deadlines")
        connection_created.connect(count_connection, dispatch_uid="arv.db.count")
        connection_created.connect(note_new_connection, dispatch_uid="arv.db.failover")
        if settings.DATABASE_REPLICAS.enabled:
            connection_created.connect(replicas.refuse_other_databases, dispatch_uid="arv.db.replicas.guard")
        checks.register(internals.check_internals)
        checks.register(database_checks.check_database_settings, deploy=True)
        checks.register(database_checks.check_renamed_variables)
        checks.register(database_checks.check_connection_budget, checks.Tags.database, deploy=True)
        checks.register(database_checks.check_pgbouncer, checks.Tags.database, deploy=True)
        checks.register(web_checks.check_static_files_collected, checks.Tags.staticfiles, deploy=True)
        checks.register(web_checks.check_secret_key, checks.Tags.security, deploy=True)

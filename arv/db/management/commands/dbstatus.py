"""`manage.py dbstatus`: the configured bound and what the database sees of ARV's connections."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Show the connection bound and ARV's connections as the database sees them."

    def handle(self, *args, **options) -> None:
        pool = settings.DATABASE_POOL
        self.stdout.write(f"vendor: {connection.vendor}")
        self.stdout.write(
            f"bound per server process: {pool.max_connections} (DB_POOL_SIZE={pool.size} + DB_MAX_OVERFLOW={pool.max_overflow})"
        )
        self.stdout.write(
            f"wait for a connection: {pool.timeout:g}s; connect timeout: {pool.connect_timeout}s; "
            f"max age: {pool.conn_max_age}s; health checks: {'on' if pool.health_checks else 'off'}"
        )
        if connection.vendor != "postgresql":
            self.stdout.write("per-connection figures need PostgreSQL")
            return
        application = connection.settings_dict["OPTIONS"].get("application_name", "arv")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state, count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid() "
                "GROUP BY state ORDER BY state",
                [application],
            )
            states = dict(cursor.fetchall())
            cursor.execute("SHOW max_connections")
            (max_connections,) = cursor.fetchone()
        open_connections = sum(states.values())
        self.stdout.write(f"connections open (all ARV processes): {open_connections}")
        self.stdout.write(f"  in use (active): {states.get('active', 0)}")
        self.stdout.write(f"  idle: {states.get('idle', 0)}")
        self.stdout.write(f"  idle in transaction: {states.get('idle in transaction', 0)}")
        self.stdout.write(f"database max_connections: {max_connections}")
        self.stdout.write("requests waiting: see GET /api/health?verbose=1 (staff) on each server process")

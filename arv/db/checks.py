"""System checks for the database configuration (`manage.py check --deploy --database default`).

- arv.W101 the connection budget: every server process's pool must fit in PostgreSQL's
  max_connections, less the reserved slots and the other clients' connections; checked for
  each database (the primary and each read replica, whose pools are bounded alike);
- arv.W102 a SQLite database with a pool larger than its one writer can use;
- arv.W103 / arv.W104 a connection pooler (PgBouncer) in front of PostgreSQL that
  DB_PGBOUNCER does not know about, or DB_PGBOUNCER on a direct connection;
- arv.E105 DB_PGBOUNCER on SQLite;
- arv.W106 a variable set under the old name it had (DB_ACTIVE_WORKERS: DB_RUNNING_JOBS).

The ones that need a connection are tagged `database` (Django runs those only with
--database). The budget check also runs at server start-up (arv.pipeline's lifespan), which logs its warning.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections

from arv.db.config import renamed_variables_in_use

# SQLite takes the write lock when a transaction begins (transaction_mode IMMEDIATE), so
# requests run one at a time whatever the pool: a few workers keep the next request ready,
# more only wait on the file lock instead of in the pool's queue.
SQLITE_USEFUL_CONNECTIONS = 4


def server_processes() -> tuple[int, str]:
    """(processes serving ARV on this database, where that number came from).

    ARV_SERVER_PROCESSES when set (the total over every server and host on the database).
    Else uvicorn's own settings when this process is uvicorn (its worker processes are
    spawned with the parent's sys.argv, so they see the same command line): --workers,
    else WEB_CONCURRENCY, else 1. Else (manage.py check) WEB_CONCURRENCY, else 1.
    """
    if settings.SERVER_PROCESSES:
        return settings.SERVER_PROCESSES, "ARV_SERVER_PROCESSES"
    workers = _uvicorn_workers(sys.argv)
    if workers is not None:
        return workers, "uvicorn's --workers / WEB_CONCURRENCY"
    concurrency = os.environ.get("WEB_CONCURRENCY", "").strip()
    if concurrency.isdigit():
        return max(1, int(concurrency)), "WEB_CONCURRENCY"
    return 1, "default (set ARV_SERVER_PROCESSES or WEB_CONCURRENCY)"


def _uvicorn_workers(argv: list[str]) -> int | None:
    """The worker count uvicorn's command line (and environment) gives, or None if argv is not uvicorn's."""
    program = Path(argv[0]) if argv else Path()
    if program.name != "uvicorn" and program.parts[-2:] != ("uvicorn", "__main__.py"):
        return None
    import uvicorn
    from uvicorn.main import main as uvicorn_command

    try:
        # uvicorn's own option parsing and defaults (--workers, $WEB_CONCURRENCY, --reload).
        params = uvicorn_command.make_context("uvicorn", list(argv[1:]), resilient_parsing=True).params
        if params.get("reload"):
            return 1
        return uvicorn.Config(app=params.get("app") or "", workers=params.get("workers"), log_config=None).workers
    except Exception:  # a check must never stop the server: fall back to WEB_CONCURRENCY
        return None


def connection_budget(alias: str = "default") -> checks.CheckMessage | None:
    """arv.W101 when the server processes' connections cannot fit in PostgreSQL's, else None."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return None
    application_name = connection.settings_dict.get("OPTIONS", {}).get("application_name", "arv")
    with connection.cursor() as cursor:
        # Slots a non-superuser may take (reserved_connections exists from PostgreSQL 16 on),
        # and those other clients hold now (ARV's own processes are counted by the budget).
        cursor.execute(
            "SELECT current_setting('max_connections')::int, "
            "current_setting('superuser_reserved_connections')::int "
            "+ coalesce(current_setting('reserved_connections', true)::int, 0), "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND application_name IS DISTINCT FROM %s)",
            [application_name],
        )
        max_connections, reserved, others = cursor.fetchone()
    processes, source = server_processes()
    pools = pools_on_server(alias)
    per_process = settings.DATABASE_POOL.max_connections * pools
    needed, available = processes * per_process, max_connections - reserved - others
    if needed <= available:
        return None
    shared = f" x {pools} pools on this server" if pools > 1 else ""
    where = f"{alias}: " if len(settings.DATABASES) > 1 else ""
    return checks.Warning(
        f"{where}connection budget does not fit: {processes} processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW = "
        f"{settings.DATABASE_POOL.max_connections}){shared} = {needed} > {available} connections the database "
        f"allows (max_connections {max_connections} - {reserved} reserved - {others} held by other clients); "
        f"processes from {source}",
        hint="Lower DB_POOL_SIZE / DB_MAX_OVERFLOW or the number of server processes, or raise max_connections.",
        id="arv.W101",
    )


def pools_on_server(alias: str) -> int:
    """How many of a process's pools (one per database) connect to the same server as alias's:
    one, unless a replica URL names the primary's host and port."""
    server = _server(settings.DATABASES[alias])
    return sum(1 for database in settings.DATABASES.values() if _server(database) == server)


def _server(database: dict[str, Any]) -> tuple[str, str]:
    return str(database.get("HOST") or ""), str(database.get("PORT") or "")


def check_connection_budget(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list:
    """arv.W101 for each database the check is run with (--database default --database replica_1)."""
    messages = []
    for alias in databases or ():
        if alias not in settings.DATABASES:
            continue
        try:
            message = connection_budget(alias)
        except DatabaseError as exc:  # e.g. unreachable
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
            message = checks.Warning(f"could not check the connection budget of {alias}: {reason}", id="arv.W100")
        if message:
            messages.append(message)
    return messages


def check_database_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """What the settings alone show (no connection): a SQLite pool too large, PgBouncer on SQLite."""
    pool = settings.DATABASE_POOL
    if connections["default"].vendor != "sqlite":
        return []
    if pool.pgbouncer:
        return [checks.Error("DB_PGBOUNCER=true but DATABASE_URL names SQLite", id="arv.E105")]
    if pool.max_connections <= SQLITE_USEFUL_CONNECTIONS:
        return []
    return [
        checks.Warning(
            f"DB_POOL_SIZE + DB_MAX_OVERFLOW = {pool.max_connections} on SQLite, which runs one transaction "
            f"at a time: the extra connections only wait on the file's write lock",
            hint=f"Use PostgreSQL, or at most {SQLITE_USEFUL_CONNECTIONS} (e.g. DB_POOL_SIZE=2 DB_MAX_OVERFLOW=2).",
            id="arv.W102",
        )
    ]


def check_renamed_variables(app_configs: Any = None, **kwargs: Any) -> list:
    """A renamed variable still set under its old name works for one release, with this warning."""
    return [
        checks.Warning(
            f"{old} is the old name of {new}: it still works for this release only",
            hint=f"Rename {old} to {new} in the environment.",
            id="arv.W106",
        )
        for old, new in renamed_variables_in_use()
    ]


def behind_a_pooler(alias: str = "default") -> bool:
    """True when a connection pooler sits between ARV and PostgreSQL.

    libpq learns a backend pid from the server's BackendKeyData message; PgBouncer sends its
    own (random) key instead of PostgreSQL's, so it differs from the pid the backend reports.
    """
    connection = connections[alias]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()
    return connection.connection.info.backend_pid != backend_pid


def check_pgbouncer(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list:
    pgbouncer = settings.DATABASE_POOL.pgbouncer
    if not databases or "default" not in databases or connections["default"].vendor != "postgresql":
        return []
    try:
        pooled = behind_a_pooler("default")
    except DatabaseError:
        return []  # check_connection_budget reports an unreachable database
    if pooled and not pgbouncer:
        return [
            checks.Warning(
                "DATABASE_URL leads through a connection pooler (PgBouncer?) but DB_PGBOUNCER is off: in "
                "transaction pooling, prepared statements and the per-session deadlines break",
                hint="Set DB_PGBOUNCER=true (README, Architecture), or connect straight to PostgreSQL.",
                id="arv.W103",
            )
        ]
    if pgbouncer and not pooled:
        return [
            checks.Warning(
                "DB_PGBOUNCER=true but DATABASE_URL leads straight to PostgreSQL: prepared statements, "
                "server-side binding and the DB_STATEMENT_TIMEOUT deadlines are off for nothing",
                hint="Unset DB_PGBOUNCER, or point DATABASE_URL at PgBouncer.",
                id="arv.W104",
            )
        ]
    return []

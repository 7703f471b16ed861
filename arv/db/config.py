"""Database settings from the environment: the one place DATABASE_URL and DB_* are read.

The old service configured SQLAlchemy's engine with pool_size, max_overflow,
pool_pre_ping, pool_recycle and echo. Here they become Django settings:

    DB_POOL_SIZE + DB_MAX_OVERFLOW  -> the number of database worker threads
                                       (arv.db.workers), each owning one connection
    DB_CONN_MAX_AGE                 -> CONN_MAX_AGE (pool_recycle)
    DB_HEALTH_CHECKS                -> CONN_HEALTH_CHECKS (pool_pre_ping)
    DB_POOL_TIMEOUT                 -> how long a request waits for a worker before 503
    DB_RUNNING_JOBS                 -> how many database jobs run at once (0: no limit);
                                       DB_ACTIVE_WORKERS, its old name, for one release
    DB_CONNECT_TIMEOUT              -> libpq connect_timeout
    DB_STATEMENT_TIMEOUT            -> PostgreSQL statement_timeout (a unit of work's deadlines)
    DB_IDLE_IN_TRANSACTION_TIMEOUT  -> PostgreSQL idle_in_transaction_session_timeout
    DB_ECHO                         -> log every SQL statement (arv.db.echo)
    DB_PGBOUNCER                    -> settings for PgBouncer's transaction pooling
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigurationError(Exception):
    """An environment variable has a value ARV cannot use."""


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean (use true or false)")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    for choice in choices:
        if raw.strip().lower() == choice.lower():
            return choice
    raise ConfigurationError(f"{name}={raw!r} must be one of {', '.join(choices)}")


def env_number(name: str, default: float, *, minimum: float = 0, integer: bool = True) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"{name}={raw!r} is not {kind}") from None
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class PoolSettings:
    """How many connections one server process may hold, and how long to wait for one."""

    size: int
    max_overflow: int
    timeout: float
    connect_timeout: int
    conn_max_age: int
    health_checks: bool
    statement_timeout_ms: int
    echo: bool
    idle_in_transaction_timeout_ms: int = 0
    pgbouncer: bool = False
    running_jobs: int = 2

    @property
    def max_connections(self) -> int:
        return self.size + self.max_overflow

    @property
    def deadlines(self) -> dict[str, int]:
        """PostgreSQL settings a database worker's connection gets (arv.db.workers), in ms; 0 is none."""
        return {
            "statement_timeout": self.statement_timeout_ms,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout_ms,
        }


# Variables renamed (old -> new): the old name still works for one release, with a warning
# naming the new one (the system check arv.W106, also logged at server start-up).
RENAMED_VARIABLES = {"DB_ACTIVE_WORKERS": "DB_RUNNING_JOBS"}


def renamed(name: str) -> str:
    """The variable to read for `name`: the old name while only it is set."""
    old = next(old for old, new in RENAMED_VARIABLES.items() if new == name)
    return old if name not in os.environ and old in os.environ else name


def renamed_variables_in_use() -> list[tuple[str, str]]:
    """(old, new) for each renamed variable set under its old name."""
    return [(old, new) for old, new in RENAMED_VARIABLES.items() if old in os.environ]


# A unit of work's deadlines (ms): no statement runs longer, no transaction idles longer.
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
TIMEOUT_VARIABLES = ("DB_STATEMENT_TIMEOUT", "DB_IDLE_IN_TRANSACTION_TIMEOUT")


def pool_settings_from_env() -> PoolSettings:
    pgbouncer = env_bool("DB_PGBOUNCER", False)
    if pgbouncer:
        # PgBouncer's transaction pooling drops startup options: the deadlines live on the role.
        if any(env_number(name, 0) for name in TIMEOUT_VARIABLES):
            raise ConfigurationError(
                "DB_STATEMENT_TIMEOUT and DB_IDLE_IN_TRANSACTION_TIMEOUT cannot pass PgBouncer (transaction "
                "pooling drops startup options): set them on the database role instead "
                "(ALTER ROLE ... SET statement_timeout = ...)"
            )
        statement_timeout = idle_timeout = 0
    else:
        statement_timeout = env_number("DB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT_MS)
        idle_timeout = env_number("DB_IDLE_IN_TRANSACTION_TIMEOUT", DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS)
    return PoolSettings(
        size=env_number("DB_POOL_SIZE", 20, minimum=1),
        max_overflow=env_number("DB_MAX_OVERFLOW", 10),
        timeout=env_number("DB_POOL_TIMEOUT", 10.0, integer=False),
        connect_timeout=env_number("DB_CONNECT_TIMEOUT", 5, minimum=1),
        conn_max_age=env_number("DB_CONN_MAX_AGE", 3600),
        health_checks=env_bool("DB_HEALTH_CHECKS", True),
        statement_timeout_ms=statement_timeout,
        idle_in_transaction_timeout_ms=idle_timeout,
        echo=env_bool("DB_ECHO", False),
        pgbouncer=pgbouncer,
        running_jobs=env_number(renamed("DB_RUNNING_JOBS"), 2),
    )


def database_from_env(default_sqlite_path: Path, pool: PoolSettings) -> dict[str, Any]:
    """The `default` entry of DATABASES for DATABASE_URL (a SQLite file when unset)."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{default_sqlite_path}"
    try:
        database = dj_database_url.parse(url)
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(f"DATABASE_URL is not a database URL Django can use: {exc}") from None
    engine = database["ENGINE"]
    database["CONN_MAX_AGE"] = pool.conn_max_age
    database["CONN_HEALTH_CHECKS"] = pool.health_checks
    options = database.setdefault("OPTIONS", {})
    if engine == "django.db.backends.postgresql":
        options.setdefault("connect_timeout", pool.connect_timeout)
        options.setdefault("application_name", "arv")
        if pool.pgbouncer:
            # Transaction pooling: a server connection serves another client after each
            # transaction, so nothing may outlive one: no server-side cursors, no
            # prepared statements.
            database["DISABLE_SERVER_SIDE_CURSORS"] = True
            options.setdefault("prepare_threshold", None)
        else:
            # Parameters bound by the server, and psycopg prepares a statement the fifth
            # time a connection runs it: PostgreSQL then skips parsing and planning the
            # queries every request makes (bench/: detail +5-15 % requests/s on 2 cores).
            options.setdefault("server_side_binding", True)
            options.setdefault("prepare_threshold", 5)
        # Django creates the test database beside the real one; keep its name predictable.
        database["TEST"] = {"NAME": f"test_{database['NAME']}"}
    elif engine == "django.db.backends.sqlite3":
        # A file database allows one writer at a time: take the write lock when the
        # transaction begins (no lock-upgrade deadlocks), wait for it as long as a
        # request waits for a connection, and let readers run beside the writer (WAL).
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", pool.timeout)
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        # Tests need a file too: the database workers are other threads with their own connections.
        database["TEST"] = {"NAME": f"{database['NAME']}.test"}
    else:
        raise ConfigurationError(f"DATABASE_URL must name PostgreSQL or SQLite, not {engine}")
    return database

"""Database settings from the environment: the one place DATABASE_URL and DB_* are read.

DATABASE_URL is SQLite's URL or libpq's, one host or several
(`postgres://user@h1:5432,h2:5433/arv?target_session_attrs=read-write&load_balance_hosts=random`),
parsed by libpq itself (psycopg's conninfo_to_dict); database_settings(url) makes one
DATABASES entry of any such URL (the primary's, or a replica's).

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
    DATABASE_REPLICA_URLS           -> DATABASES replica_1, replica_2, ... (arv.db.replicas)
    DB_REPLICA_MAX_LAG              -> a replica further behind is skipped (seconds)
    DB_REPLICA_WAIT_MS              -> how long a read may wait for a replica to replay a position
    DB_WARMUP_SECONDS               -> the window in which start-up opens the pool (arv.db.readiness)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
from psycopg.conninfo import conninfo_to_dict

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
    running_jobs: int = 8
    warmup_seconds: float = 2.0

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
        running_jobs=env_number(renamed("DB_RUNNING_JOBS"), 8),
        warmup_seconds=env_number("DB_WARMUP_SECONDS", 2.0, integer=False),
    )


def database_from_env(default_sqlite_path: Path, pool: PoolSettings) -> dict[str, Any]:
    """The `default` entry of DATABASES for DATABASE_URL (a SQLite file when unset)."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{default_sqlite_path}"
    return database_settings(url, pool)


# libpq's URL schemes; anything else goes to dj_database_url (SQLite, and engines ARV refuses).
POSTGRES_SCHEMES = ("postgres://", "postgresql://")
# libpq parameters whose values libpq checks only when it connects: checked at start-up instead.
LIBPQ_CHOICES = {
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
}
# Django's PostgreSQL backend and ARV's (arv.db.postgresql: the same, with the role check).
POSTGRES_ENGINES = ("django.db.backends.postgresql", "arv.db.postgresql")
POSTGRES_ENGINE = "arv.db.postgresql"
# Django's own names for what libpq calls host, port, dbname, user, password.
DJANGO_KEYS = {"host": "HOST", "port": "PORT", "dbname": "NAME", "user": "USER", "password": "PASSWORD"}


def database_settings(url: str, pool: PoolSettings, *, variable: str = "DATABASE_URL", primary: bool = True) -> dict:
    """One DATABASES entry for a database URL: PostgreSQL (libpq's URL, one host or several) or
    SQLite. `variable` names the setting in errors; `primary` is false for a read replica (its
    connections may go to a standby: no target_session_attrs=read-write)."""
    if url.startswith(POSTGRES_SCHEMES):
        database = postgres_settings(url, variable)
    else:
        try:
            database = dj_database_url.parse(url)
        except (ValueError, KeyError) as exc:
            raise ConfigurationError(f"{variable} is not a database URL Django can use: {exc}") from None
    engine = database["ENGINE"]
    database["CONN_MAX_AGE"] = pool.conn_max_age
    database["CONN_HEALTH_CHECKS"] = pool.health_checks
    options = database.setdefault("OPTIONS", {})
    if engine in POSTGRES_ENGINES:
        # Django's backend, with a health check that also notices a server no longer primary.
        database["ENGINE"] = POSTGRES_ENGINE
        options.setdefault("connect_timeout", pool.connect_timeout)
        options.setdefault("application_name", "arv")
        if pool.pgbouncer:
            if "," in database["HOST"]:
                raise ConfigurationError(
                    f"{variable} names several hosts, which cannot work with DB_PGBOUNCER: behind transaction "
                    "pooling a connection's server changes every transaction, so libpq cannot tell which host "
                    "is the primary; point PgBouncer at the primary (its failover is the pooler's) and "
                    f"{variable} at PgBouncer"
                )
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
            if primary:
                # Of several hosts, libpq connects to the one that accepts writes (and after a
                # failover finds the new one); with one host, a standby is refused at connect.
                options.setdefault("target_session_attrs", "read-write")
        # Django creates the test database beside the real one; keep its name predictable.
        database["TEST"] = {"NAME": f"test_{database['NAME']}"}
    elif engine == "django.db.backends.sqlite3":
        if options:
            raise ConfigurationError(
                f"{variable} names SQLite, which takes no URL parameters ({', '.join(sorted(options))}): "
                "several hosts, target_session_attrs and the other libpq parameters are PostgreSQL's"
            )
        # A file database allows one writer at a time: take the write lock when the
        # transaction begins (no lock-upgrade deadlocks), wait for it as long as a
        # request waits for a connection, and let readers run beside the writer (WAL).
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", pool.timeout)
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        # Tests need a file too: the database workers are other threads with their own connections.
        database["TEST"] = {"NAME": f"{database['NAME']}.test"}
    else:
        raise ConfigurationError(f"{variable} must name PostgreSQL or SQLite, not {engine}")
    return database


def postgres_settings(url: str, variable: str) -> dict[str, Any]:
    """A libpq URL (`postgres://user:pass@h1:5432,h2:5433/db?target_session_attrs=...`) parsed by
    libpq itself (psycopg's conninfo_to_dict), as Django's settings: HOST and PORT stay
    comma-separated lists (libpq's form, which Django passes through), every other parameter
    becomes OPTIONS. What libpq would refuse only when connecting is refused here, in one line
    that names it (never the URL: it may hold a password)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"{variable} is not a PostgreSQL URL libpq accepts: {str(exc).strip()}") from None
    if not params.get("dbname"):
        raise ConfigurationError(f"{variable} names no database (postgres://user@host:port/<database>)")
    hosts = params.get("host", "").split(",")
    ports = params.get("port", "").split(",")
    if len(ports) not in (1, len(hosts)):
        raise ConfigurationError(f"{variable} gives {len(hosts)} hosts but {len(ports)} ports")
    for port in ports:
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigurationError(f"{variable} has a port that is not a number from 1 to 65535: {port!r}")
    if len(hosts) > 1 and "" in hosts:
        raise ConfigurationError(f"{variable} lists an empty host among several (postgres://user@h1:p1,h2:p2/db)")
    for name, choices in LIBPQ_CHOICES.items():
        if name in params and params[name] not in choices:
            raise ConfigurationError(f"{variable} has {name}={params[name]!r}: use one of {', '.join(choices)}")
    database: dict[str, Any] = {
        "ENGINE": POSTGRES_ENGINE,
        "HOST": "",
        "PORT": "",
        "USER": "",
        "PASSWORD": "",
    }
    for libpq_name, django_name in DJANGO_KEYS.items():
        if libpq_name in params:
            database[django_name] = params.pop(libpq_name)
    if database["PORT"].isdigit():
        database["PORT"] = int(database["PORT"])  # one port, as Django's own settings have it
    if "connect_timeout" in params:
        params["connect_timeout"] = url_seconds(params["connect_timeout"], variable, "connect_timeout")
    database["OPTIONS"] = params
    return database


def url_seconds(raw: str, variable: str, name: str) -> int:
    """A whole number of seconds from a URL parameter, or a one-line error naming it."""
    if not raw.strip().isdigit():
        raise ConfigurationError(f"{variable} has {name}={raw!r}, which is not a whole number of seconds")
    return int(raw)


@dataclass(frozen=True)
class ReplicaSettings:
    """Read replicas (arv.db.replicas): their DATABASES aliases, and when a read may use one."""

    aliases: tuple[str, ...] = ()
    max_lag: float = 5.0
    wait_ms: int = 20

    @property
    def enabled(self) -> bool:
        return bool(self.aliases)


REPLICA_ALIAS = "replica_{}"


def replicas_from_env(pool: PoolSettings, primary: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], ReplicaSettings]:
    """DATABASES entries for DATABASE_REPLICA_URLS (comma-separated libpq URLs; a multi-host one
    is quoted or written with its hosts separated by commas inside the authority, as libpq has it),
    and the replica settings. Replicas are PostgreSQL standbys: refused beside SQLite."""
    raw = os.environ.get("DATABASE_REPLICA_URLS", "").strip()
    settings = ReplicaSettings(
        max_lag=env_number("DB_REPLICA_MAX_LAG", ReplicaSettings.max_lag, integer=False),
        wait_ms=env_number("DB_REPLICA_WAIT_MS", ReplicaSettings.wait_ms),
    )
    if not raw:
        return {}, settings
    if primary["ENGINE"] not in POSTGRES_ENGINES:
        raise ConfigurationError(
            "DATABASE_REPLICA_URLS needs PostgreSQL: read replicas are PostgreSQL standbys, and DATABASE_URL names "
            "SQLite"
        )
    databases: dict[str, dict[str, Any]] = {}
    for number, url in enumerate(split_urls(raw), start=1):
        if not url.startswith(POSTGRES_SCHEMES):
            raise ConfigurationError(f"DATABASE_REPLICA_URLS entry {number} is not a PostgreSQL URL (postgres://...)")
        database = database_settings(url, pool, variable=f"DATABASE_REPLICA_URLS entry {number}", primary=False)
        # Django's test runner makes no database for a replica: it reads the default's.
        database["TEST"] = {"MIRROR": "default"}
        databases[REPLICA_ALIAS.format(number)] = database
    return databases, replace(settings, aliases=tuple(databases))


def split_urls(raw: str) -> list[str]:
    """Comma-separated URLs, where a multi-host URL's own commas (host:port,host:port in its
    authority) do not split: a new URL starts only where a scheme does."""
    urls: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if urls and "://" not in part:
            urls[-1] += "," + part  # another host of the previous URL
        else:
            urls.append(part)
    return urls

"""Failover: which connections to replace, and one log line when writes move to another server.

A primary is stopped, a standby promoted (Patroni, a managed service, an operator with
pg_ctl). ARV's connections to the old primary are then dead (57P01 admin shutdown, a
closed socket) or reach a server that refuses writes (25006 read_only_sql_transaction:
a demoted or fenced primary). Such a connection is closed on its worker, never reused;
the next unit on that worker connects again, and libpq (target_session_attrs=read-write,
arv.db.config) finds whichever host accepts writes now. The request that met it runs once
more when nothing of it was committed and it did nothing outside the database
(arv.pipeline), else it is 503 with Retry-After (arv.db.errors).

The health check (CONN_HEALTH_CHECKS, arv.db.postgresql) notices the same thing before a
request uses the connection: server_accepts_writes() below.

PrimaryWatch remembers which server the connections reach; when they are lost and later
reach a writable server again, it logs one line: the old server, the new one, and how long
writes were refused in between.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

from arv.db.workers import worker_state

logger = logging.getLogger("arv.db")

# SQLSTATEs meaning "this connection's server is not the primary any more, or is going away".
READ_ONLY_SQLSTATE = "25006"  # read_only_sql_transaction: a write on a standby or a fenced primary
SHUTDOWN_SQLSTATES = {"57P01", "57P02", "57P03"}  # admin shutdown, crash shutdown, cannot connect now
SERVER_LOST_SQLSTATES = SHUTDOWN_SQLSTATES | {READ_ONLY_SQLSTATE}
# libpq's target_session_attrs that ask for a server accepting writes.
WRITABLE_TARGETS = {"read-write", "primary"}


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind a Django DatabaseError, if it has one."""
    return getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)


def server_lost(exc: BaseException) -> bool:
    """Whether a database error means the connection's server is gone or no longer the primary
    (so the connection must be replaced): a shutdown, a read-only refusal, a broken connection."""
    if not isinstance(exc, DatabaseError):
        return False
    state = sqlstate(exc) or ""
    if state in SERVER_LOST_SQLSTATES or state.startswith("08"):
        return True
    # No SQLSTATE: the driver lost the connection (closed by the server, reset, timed out).
    return isinstance(exc, (OperationalError, InterfaceError)) and not state


def requires_primary(settings_dict: dict[str, Any]) -> bool:
    """Whether a database's connections asked libpq for a server that accepts writes."""
    return settings_dict.get("OPTIONS", {}).get("target_session_attrs") in WRITABLE_TARGETS


def server_accepts_writes(pg_connection: Any) -> bool:
    """What the server last reported about itself, without a round trip: PostgreSQL 14+ sends
    in_hot_standby and default_transaction_read_only whenever they change (older servers
    report neither: taken as writable, and a refused write says otherwise)."""
    info = pg_connection.info
    return info.parameter_status("in_hot_standby") != "on" and (
        info.parameter_status("default_transaction_read_only") != "on"
    )


def server_address(pg_connection: Any) -> str:
    """host:port of the server a psycopg connection reached (of several hosts, the one chosen)."""
    info = pg_connection.info
    return f"{info.host}:{info.port}"


class PrimaryWatch:
    """Which server a database's connections reach, and when writes stopped reaching one."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._lock = threading.Lock()
        self.primary: str | None = None  # the writable server the connections reach
        self.refused_since: float | None = None  # monotonic time the connections were lost
        self.lost_server: str | None = None
        self.failovers = 0  # times the connections moved to another server (for the metrics)

    def lost(self, server: str | None) -> None:
        """A connection found its server gone or refusing writes. A connection still open to a
        former primary (found later, by the unit or check that used it) is no news."""
        with self._lock:
            if server is None or (self.primary is not None and server != self.primary):
                return
            if self.refused_since is None:
                self.refused_since = time.monotonic()
                self.lost_server = server

    def reached(self, server: str) -> None:
        """A connection to a writable server was opened: if connections had been lost, one line
        says where writes went and how long they were refused."""
        with self._lock:
            since, old = self.refused_since, self.lost_server or self.primary
            self.primary, self.refused_since, self.lost_server = server, None, None
            moved = old is not None and old != server
            if moved:
                self.failovers += 1
        refused = f"{time.monotonic() - since:.1f}s" if since is not None else "no time noticed"
        if moved:
            logger.warning(
                "database failover (%s): the primary moved from %s to %s; writes were refused for %s",
                self.alias,
                old,
                server,
                refused,
            )
        elif since is not None:
            logger.info("database connections (%s) to %s lost and reopened after %s", self.alias, server, refused)


_watches: dict[str, PrimaryWatch] = {}
_watches_lock = threading.Lock()


def primary_watch(alias: str = DEFAULT_DB_ALIAS) -> PrimaryWatch:
    with _watches_lock:
        if alias not in _watches:
            _watches[alias] = PrimaryWatch(alias)
        return _watches[alias]


# -- on a database worker's thread ---------------------------------------------------------


def writable_server(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """host:port of the writable server this thread's connection reaches (as last reported), or None."""
    return reaches_writable(connections[alias])


def reaches_writable(wrapper: Any) -> str | None:
    """host:port of the writable server a Django connection reaches (as last reported), or None."""
    pg_connection = wrapper.connection
    if pg_connection is None or getattr(pg_connection, "closed", False):
        return None
    if wrapper.vendor != "postgresql":  # SQLite: one file, always its own primary
        return str(wrapper.settings_dict["NAME"])
    if requires_primary(wrapper.settings_dict) and not server_accepts_writes(pg_connection):
        return None
    return server_address(pg_connection)


def note_connection_state(alias: str = DEFAULT_DB_ALIAS) -> None:
    """At a unit's end, on its worker: what its connection reaches now (readiness counts these)."""
    worker = getattr(worker_state, "worker", None)
    if worker is not None:
        worker.connection = connections[alias]  # for its leases' reads on the event loop (arv.db.on_loop)
        worker.writable_server = reaches_writable(worker.connection)


def replace_if_lost(
    exc: BaseException, alias: str = DEFAULT_DB_ALIAS, *, wrapper: Any = None, worker: Any = None
) -> bool:
    """After a database error on this thread (or on the event loop, for the leased worker's
    `wrapper`, arv.db.on_loop): if it came from an open connection whose server is gone or no
    longer the primary, note it and have the connection closed at the unit's end (or its
    worker's next unit), so it is never reused. True if so: a fresh unit, on a new
    connection, may succeed where this one failed (a failed connect is not retried: the next
    attempt would most likely fail the same way, and the client is better told 503 at once)."""
    wrapper = wrapper if wrapper is not None else connections[alias]
    if wrapper.connection is None or not server_lost(exc):
        return False
    if not sqlstate(exc) and not (wrapper.connection.closed or wrapper.connection.broken):
        return False  # no SQLSTATE and the connection still works: not a lost server
    connection_lost(wrapper, worker)
    wrapper.close_at = 0  # closed by the unit's end (close_if_unusable_or_obsolete)
    return True


def check_connection(alias: str = DEFAULT_DB_ALIAS) -> str | None:
    """On an idle worker (the pool keeper, arv.db.readiness): its connection checked as the
    health check does (ping and role: a failed check is noted by the backend), replaced if it
    fails, opened if there is none. The writable server it reaches, or None."""
    wrapper = connections[alias]
    if wrapper.connection is not None and not wrapper.is_usable():
        wrapper.close()
    try:
        wrapper.ensure_connection()
    except DatabaseError:
        wrapper.close()
    note_connection_state(alias)
    return writable_server(alias)


def connection_lost(wrapper: Any, worker: Any = None) -> None:
    """A Django connection (of this thread's worker, or of `worker`) lost its server: gone, or no
    longer the primary. Noted for the failover line; and no worker's connection counts as ready
    (or is trusted without a health check) until checked again: the others most likely went with it."""
    try:
        server = server_address(wrapper.connection)
    except Exception:  # noqa: BLE001 - a broken connection may not say where it went
        server = None
    primary_watch(wrapper.alias).lost(server)
    worker = worker if worker is not None else getattr(worker_state, "worker", None)
    if worker is not None:
        worker.writable_server = None
        worker.pool.forget_servers()


def note_new_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: a connection to a writable server may end a failover."""
    if connection.vendor != "postgresql" or not requires_primary(connection.settings_dict):
        return
    server = reaches_writable(connection)
    if server is not None:
        primary_watch(connection.alias).reached(server)

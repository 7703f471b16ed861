"""Read replicas: which database a request reads from, and how its client reads its own writes.

DATABASE_REPLICA_URLS adds DATABASES `replica_1`, `replica_2`, ... (arv.db.config). Each
has its own pool of database workers (arv.db.workers), bounded like the primary's and
counted in the connection budget (arv.db.checks). A worker serves one database:

    routing     The pipeline decides per request, before its unit of work starts
                (`route_for`): an API GET or HEAD may read from a replica, anything else
                uses the primary. On a replica's worker, ReplicaRouter sends the ORM's
                reads to that replica; a write (db_for_write) or any use of `default`
                ends the unit (NeedsPrimary, nothing was written) and the pipeline runs
                the request again on the primary. Its route is remembered, so later
                requests on it start there (as do views marked @reads_primary).
    positions   After a unit that wrote commits, its WAL position (`pg_current_wal_insert_lsn()`,
                read in the same trip) goes back to the client (arv.db.read_after: the
                ARV-Read-After header, a signed cookie). A request that sends one back
                reads from a replica only once that replica has replayed so far
                (`pg_last_wal_replay_lsn()`, waited for up to DB_REPLICA_WAIT_MS), else
                from the primary: a client never reads older data than its own writes.
    monitor     Once a second per replica (`watch_replicas_forever`, started by the
                lifespan): its replay position and lag, on one of its pool's workers. A
                replica lagging more than DB_REPLICA_MAX_LAG seconds, unreachable, or no
                longer a standby is skipped (one log line) until it is back (one line). A
                read that fails on a replica runs again on the primary: a replica's
                failure never fails a read.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest
from django.urls import Resolver404, resolve

from arv.db.workers import PoolClosed, PoolTimeout, get_pool, in_database_worker, worker_database, worker_state

logger = logging.getLogger("arv.db")

F = TypeVar("F", bound=Callable[..., Any])

# How often the monitor looks at each replica.
CHECK_SECONDS = 1.0
# How long a read waiting for a replica to replay (DB_REPLICA_WAIT_MS) sleeps between looks.
REPLAY_POLL_SECONDS = 0.005
READ_METHODS = frozenset({"GET", "HEAD"})
# A WAL position as PostgreSQL writes a pg_lsn: two hexadecimal halves.
LSN_PATTERN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
# Statements that write nothing (what a read-only unit runs): anything else is a write.
NOT_WRITES = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "SET", "SHOW")

# One round trip: is it a standby, how far it has replayed, and how far behind that is (0
# when it has replayed all it received, else the age of the last commit it replayed).
REPLICA_STATE_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "CASE WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0 "
    "ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 END"
)


class NeedsPrimary(BaseException):
    """A unit on a replica needs the primary (it would write, or the replica has not replayed
    the client's position): the unit ends, rolled back, and the pipeline runs the request
    again on the primary. A BaseException, so that no view or error handler answers it."""


class ReplicaBehind(NeedsPrimary):
    """The replica has not replayed the client's position (within DB_REPLICA_WAIT_MS)."""


def enabled() -> bool:
    return settings.DATABASE_REPLICAS.enabled


# -- WAL positions ------------------------------------------------------------------------


def lsn_value(text: str) -> int:
    """A pg_lsn's text ('16/B374D848') as a number that compares as PostgreSQL compares them."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int | None:
    """A WAL position a client sent back, or None if it is not one."""
    text = text.strip()
    return lsn_value(text) if LSN_PATTERN.fullmatch(text) else None


# -- the router -----------------------------------------------------------------------------


class ReplicaRouter:
    """DATABASE_ROUTERS: reads go to the database the worker serves (a replica's pool's workers
    read from their replica), writes and migrations to the primary. A write on a replica's
    worker cannot go anywhere without breaking its pool's bound: it ends the unit (NeedsPrimary)."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return worker_database()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        if worker_database() != DEFAULT_DB_ALIAS:
            raise NeedsPrimary(f"a write to {model._meta.label}")
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # every database holds the same rows

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


def refuse_other_databases(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: a worker connects to its pool's database only (each pool's
    bound holds). On a replica's worker, code that names `default` itself
    (django.db.connection, transaction.atomic()) needs the primary: NeedsPrimary."""
    if not in_database_worker() or connection.alias == worker_database():
        return
    connection.close()
    if worker_database() != DEFAULT_DB_ALIAS:
        raise NeedsPrimary(f"a connection to {connection.alias!r}")
    raise RuntimeError(
        f"a primary worker opened a connection to {connection.alias!r}: reads go to a replica by the "
        "request's route (arv.db.replicas), not by .using()"
    )


# -- which database a request reads from ----------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a unit of work runs: its database, and what must hold before it reads there."""

    database: str = DEFAULT_DB_ALIAS
    # The client's WAL position the replica must have replayed first (None: any replica is fine).
    position: int | None = None

    @property
    def on_replica(self) -> bool:
        return self.database != DEFAULT_DB_ALIAS

    def replayed(self) -> bool:
        """Whether the replica is known to have replayed the client's position (no check needed)."""
        return self.position is None or monitor.replayed(self.database, self.position)


PRIMARY = Route()
# Routes (URL pattern, method) whose requests needed the primary: they start there from now on.
_primary_routes: set[tuple[str, str]] = set()


def route_key(request: HttpRequest) -> tuple[str, str] | None:
    match = getattr(request, "resolver_match", None)
    return (str(match.route), request.method or "") if match is not None else None


def may_read_from_replica(request: HttpRequest, is_api: bool) -> bool:
    """API GET and HEAD requests, unless their route needed the primary before."""
    if not (is_api and request.method in READ_METHODS and enabled()):
        return False
    if not _primary_routes:
        return True
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return True
    return (str(match.route), request.method) not in _primary_routes


def route_for(request: HttpRequest, is_api: bool, position: int | None) -> Route:
    """The database a request's unit of work runs on: a usable replica that has replayed the
    client's position (or one to check first), else the primary."""
    if not may_read_from_replica(request, is_api):
        return PRIMARY
    database = monitor.choose(position)
    return Route(database, position) if database is not None else PRIMARY


def needed_primary(request: HttpRequest) -> None:
    """The request's unit on a replica needed the primary: its route starts there from now on."""
    key = route_key(request)
    if key is not None and key not in _primary_routes:
        _primary_routes.add(key)
        logger.info("%s %s reads from the primary from now on (it needs it)", key[1], key[0])


def rerun_on_primary(request: HttpRequest, route: Route, unit: Any) -> bool:
    """After a unit on a replica: whether the request must run again on the primary (it
    needed the primary, or the replica failed it), noting why for the requests that follow."""
    if unit.needs_primary is not None:
        if not isinstance(unit.needs_primary, ReplicaBehind):
            needed_primary(request)
        return True
    if unit.failure is not None:
        replica_failed(route.database, unit.failure)
        return True
    return False


def reads_primary(view: F) -> F:
    """For an async view that must read from the primary (it writes on GET, or must see the
    newest rows whoever wrote them). Its first request may start on a replica and is then run
    again on the primary; its route starts on the primary from then on."""

    @functools.wraps(view)
    async def on_primary(*args: Any, **kwargs: Any) -> Any:
        from arv.db.transaction import current_unit

        if current_unit().pool.alias != DEFAULT_DB_ALIAS:
            raise NeedsPrimary(f"{view.__qualname__} reads from the primary")
        return await view(*args, **kwargs)

    return on_primary  # type: ignore[return-value]


# -- on the worker: a replica's replay, the primary's position after a commit ----------------


def check_replayed(route: Route) -> None:
    """First thing in a replica unit's first trip: the replica has replayed the client's
    position, waited for up to DB_REPLICA_WAIT_MS, else NeedsPrimary."""
    if route.replayed():
        return
    deadline = time.monotonic() + settings.DATABASE_REPLICAS.wait_ms / 1000
    while True:
        with connections[route.database].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            (text,) = cursor.fetchone()
        if text is not None and monitor.saw_replay(route.database, lsn_value(text)) >= route.position:
            return
        if time.monotonic() >= deadline:
            raise ReplicaBehind(f"{route.database} has not replayed {lsn_text(route.position)}")
        time.sleep(REPLAY_POLL_SECONDS)


def note_writes(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any) -> Any:
    """The primary's execute wrapper: marks the worker's transaction as one that wrote."""
    if not getattr(worker_state, "wrote", True) and not (
        isinstance(sql, str) and sql.lstrip()[:9].upper().startswith(NOT_WRITES)
    ):
        worker_state.wrote = True
    return execute(sql, params, many, context)


def transaction_began() -> None:
    """A unit's transaction began on this worker: on the primary (with replicas), note its writes
    (Django's execute_wrapper, for the transaction's length)."""
    worker_state.wrote = False
    if enabled() and worker_database() == DEFAULT_DB_ALIAS:
        watching = connections[DEFAULT_DB_ALIAS].execute_wrapper(note_writes)
        watching.__enter__()
        worker_state.watching = watching


def transaction_ended() -> None:
    watching = getattr(worker_state, "watching", None)
    if watching is not None:
        worker_state.watching = None
        watching.__exit__(None, None, None)


def position_after_commit() -> int | None:
    """Just after a commit on the primary: the WAL position a replica must replay to show it,
    if the transaction wrote (one more statement in the same trip); else None."""
    if not getattr(worker_state, "wrote", False) or not enabled() or worker_database() != DEFAULT_DB_ALIAS:
        return None
    worker_state.wrote = False
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(WAL_INSERT_POSITION)
            (text,) = cursor.fetchone()
    except DatabaseError as exc:
        no_position(exc)
        return None
    return lsn_value(text)


# Just after a commit: the insert position is at or past the end of the commit record just written.
WAL_INSERT_POSITION = "SELECT pg_current_wal_insert_lsn()::text"


def no_position(exc: BaseException) -> None:
    """Committed, but the connection failed right after: the answer stands (a 503 would tell the
    client its write failed), without a position."""
    logger.warning("no read-after position for a committed write: %s", type(exc.__cause__ or exc).__name__)


# -- the monitor ------------------------------------------------------------------------------


@dataclass
class ReplicaState:
    database: str
    where: str  # host:port, for the log (never the URL: it may hold a password)
    available: bool | None = None  # None until first checked
    reason: str = "not checked yet"
    replay: int = 0  # the furthest replay position seen
    lag: float | None = None
    in_recovery: bool | None = None
    since: float = 0.0  # when it was last skipped or taken back


class ReplicaMonitor:
    """What is known of each replica: whether reads may use it, and how far it has replayed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, ReplicaState] = {}
        self._turn = itertools.count()

    def states(self) -> list[ReplicaState]:
        aliases = settings.DATABASE_REPLICAS.aliases
        with self._lock:
            for alias in aliases:
                if alias not in self._states:
                    database = settings.DATABASES.get(alias, {})
                    where = f"{database.get('HOST') or 'localhost'}:{database.get('PORT') or 5432}"
                    self._states[alias] = ReplicaState(alias, where)
            return [self._states[alias] for alias in aliases]

    def choose(self, position: int | None) -> str | None:
        """A usable replica, one that has replayed `position` first; None: use the primary."""
        usable = [state for state in self.states() if state.available]
        if not usable:
            return None
        caught_up = [state for state in usable if position is None or state.replay >= position]
        candidates = caught_up or usable  # not known to have replayed it: checked on the replica
        return candidates[next(self._turn) % len(candidates)].database

    def replayed(self, database: str, position: int) -> bool:
        return self._state(database).replay >= position

    def saw_replay(self, database: str, position: int) -> int:
        state = self._state(database)
        with self._lock:
            state.replay = max(state.replay, position)
            return state.replay

    def _state(self, database: str) -> ReplicaState:
        state = self._states.get(database)
        if state is None:
            self.states()
            state = self._states[database]
        return state

    def observed(self, database: str, in_recovery: bool, replay: str | None, lag: float | None) -> None:
        """What a check found: usable unless it lags too far or is not a standby."""
        state = self._state(database)
        state.in_recovery, state.lag = in_recovery, lag
        if replay is not None:
            self.saw_replay(database, lsn_value(replay))
        max_lag = settings.DATABASE_REPLICAS.max_lag
        if not in_recovery:
            self._set(state, False, "it is not a standby (not in recovery)")
        elif lag is None:
            self._set(state, False, "its replay lag is unknown (nothing replayed yet)")
        elif lag > max_lag:
            self._set(state, False, f"replay lag {lag:.1f}s over DB_REPLICA_MAX_LAG={max_lag:g}s")
        else:
            self._set(state, True, f"replay lag {lag:.1f}s")

    def unreachable(self, database: str, exc: BaseException) -> None:
        self._set(self._state(database), False, f"unreachable ({type(exc.__cause__ or exc).__name__})")

    def _set(self, state: ReplicaState, available: bool, reason: str) -> None:
        with self._lock:
            before, state.reason = state.available, reason
            if before == available:
                return
            state.available, now = available, time.monotonic()
            since, state.since = state.since, now
        # One line per change: skipped, or back (with how long it was out).
        if not available:
            logger.warning(
                "replica %s (%s) skipped: %s; its reads go to the primary", state.database, state.where, reason
            )
        elif before is None:
            logger.info("replica %s (%s) in use: %s", state.database, state.where, reason)
        else:
            logger.warning(
                "replica %s (%s) back in use after %.1fs: %s", state.database, state.where, now - since, reason
            )

    def forget(self) -> None:
        """Start afresh (a new server process, or a test)."""
        with self._lock:
            self._states.clear()
        _primary_routes.clear()


monitor = ReplicaMonitor()


def replica_state(database: str) -> tuple[bool, str | None, float | None]:
    """On one of the replica's workers: (in recovery, replay position, lag in seconds)."""
    connection = connections[database]
    connection.close_if_unusable_or_obsolete()  # with CONN_HEALTH_CHECKS: a dead connection is replaced
    with connection.cursor() as cursor:
        cursor.execute(REPLICA_STATE_SQL)
        return cursor.fetchone()


async def check_replica(database: str) -> None:
    pool = get_pool(database)
    try:
        worker = await pool.acquire()
    except (PoolTimeout, PoolClosed):
        return  # every worker busy (it serves reads) or shutting down: no news
    try:
        in_recovery, replay, lag = await worker.call(replica_state, database)
    except DatabaseError as exc:
        monitor.unreachable(database, exc)
    else:
        monitor.observed(database, in_recovery, replay, lag)
    finally:
        pool.release(worker)


async def watch_replicas_forever() -> None:
    """Every CHECK_SECONDS, each replica's state (started by the lifespan when there are replicas)."""
    while True:
        await asyncio.gather(*(check_replica(alias) for alias in settings.DATABASE_REPLICAS.aliases))
        await asyncio.sleep(CHECK_SECONDS)


def replica_failed(database: str, exc: BaseException | None) -> None:
    """A request's unit failed on a replica: if it could not reach it, skip it until the
    monitor sees it back (a refused connection or a server gone)."""
    from arv.db.errors import Failure, classify, unavailable_cause

    if exc is not None and classify(exc) is Failure.UNAVAILABLE and unavailable_cause(exc) == "unreachable":
        monitor.unreachable(database, exc)

"""Database worker threads: bounded, persistent, health-checked connections under ASGI.

Why not Django's defaults: Django keeps one connection per thread, and its ASGI
handler runs each request's sync work on a new thread. With CONN_MAX_AGE > 0
every request opens a connection that nobody reuses and nobody closes; with
CONN_MAX_AGE = 0 every request pays for a new PostgreSQL session.

What this module does instead: a process owns at most DB_POOL_SIZE +
DB_MAX_OVERFLOW long-lived threads. Each keeps its own Django connection, so
CONN_MAX_AGE and CONN_HEALTH_CHECKS work exactly as Django documents them for a
long-lived thread. A request *leases* one worker for its whole unit of work
(arv.db.transaction), so all of its database work runs on one connection, in
one transaction. The first DB_POOL_SIZE workers live as long as the process;
the overflow ones close their connection and exit after OVERFLOW_IDLE_SECONDS
without work. A request that finds no free worker within DB_POOL_TIMEOUT gets
PoolTimeout (503).

Leased is not running: at most DB_RUNNING_JOBS workers run a job at once, the
others' jobs wait their turn in order. Every worker thread needs Python's GIL,
as does the event loop; thirty threads woken together spend more CPU handing
the GIL around (futex calls in the kernel) than working. Measured on 2 cores
with the detail endpoint at 32 connections (bench/), when its reads still ran on
the workers: no limit ~380 requests/s and 1.0 ms of system CPU per request; 2 at
once ~510 requests/s and 0.4 ms. Since the API's reads run on the event loop
(arv.db.on_loop), the workers mostly write, and a write mostly waits on PostgreSQL
holding its turn: the default is 8 (creates at 32 connections: 2 at once 350-378
requests/s, 4 at once 371-393, 8 at once 389-418; 512 against 612 at 2 processes;
reads unchanged). On uvloop, 8 at once stretched the tail at 128 connections (p99 461-655
ms against 273-336 with 2); arv.event_loop's fair order undoes that (287-348 against 264-320
ms, at 515-603 against 492-508 requests/s). Giving the turn back during each statement
instead cost more in threads waking each other than it saved (creates 340 vs 378
requests/s). A job that waited ACTIVE_WAIT_SECONDS runs anyway, so a job that holds
its turn while it waits for a row lock cannot stall the commit that would release it.

A turn is for using the GIL, not for waiting on the database: a job gives its turn
back (give_back_turn()) before a COMMIT, which waits for PostgreSQL to flush the WAL
to disk with the GIL released, and finishes without one. Holding turns through
commits serialised them DB_RUNNING_JOBS at a time (no group commit): creates ran
slower than on a 30-thread gthread server although each cost less CPU.

One pool per database: `default` (the primary), and one per read replica
(arv.db.replicas), each with its own bound. A worker only ever connects to its
pool's database (the router sends its queries there), so a process holds at most
the sum of its pools' bounds, which the budget check (arv.db.checks) counts.

All pool bookkeeping happens under one lock; results travel back to the
event loop with call_soon_threadsafe, so any number of event loops may share
the pool (tests create several). The pool counts what it does (status(): timeouts,
connections opened, reconnects); arv.metrics reads those counts, this module imports
no metrics.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from arv.db.config import PoolSettings

logger = logging.getLogger("arv.db")

T = TypeVar("T")

# How long an overflow worker may sit idle before it closes its connection.
OVERFLOW_IDLE_SECONDS = 30.0
# How long a job waits for its turn to run (DB_RUNNING_JOBS) before it runs anyway.
ACTIVE_WAIT_SECONDS = 0.25
# How long a thread may hold Python's GIL while another asks for it (sys.setswitchinterval; the
# server sets it at start-up, arv.pipeline). At Python's 5 ms the event loop, busy with many
# requests at once, is made to hand the GIL over each time a worker back from PostgreSQL has
# waited 5 ms; at 20 ms it does more of its work between switches, and fewer switches cost less.
# Creates at 32 connections, 2 processes, alternating runs (bench/): 618-635 against 546-642
# requests/s; at 128 connections p99 0.67-1.07 against 1.08-1.42 s; reads on the loop unchanged;
# 50 ms no better, 1 ms worse.
GIL_SWITCH_INTERVAL = 0.02

_STOP = object()
# Per-thread state of a database worker: the worker itself, and the open unit of work (arv.db.transaction).
worker_state = threading.local()


class PoolTimeout(Exception):
    """No database worker became free within DB_POOL_TIMEOUT."""


class PoolClosed(Exception):
    """The pool is shut down (the server is stopping)."""


def in_database_worker() -> bool:
    """True on a database worker thread (whose connections the pool manages)."""
    return getattr(worker_state, "worker", None) is not None


def worker_database() -> str:
    """The database (DATABASES alias) this thread's queries go to: its pool's on a database
    worker (a replica's pool serves a replica), else default."""
    worker = getattr(worker_state, "worker", None)
    return worker.pool.alias if worker is not None else DEFAULT_DB_ALIAS


def set_unit_deadlines(sender, connection, **kwargs) -> None:
    """connection_created receiver: a worker's PostgreSQL session gets DB_STATEMENT_TIMEOUT and
    DB_IDLE_IN_TRANSACTION_TIMEOUT. Only workers': `manage.py migrate` may run longer."""
    if connection.vendor != "postgresql" or not in_database_worker():
        return
    with connection.cursor() as cursor:
        for name, ms in settings.DATABASE_POOL.deadlines.items():
            if ms:  # one statement per execute: server-side binding allows no more
                cursor.execute(f"SET {name} = {int(ms)}")


def count_connection(sender, connection, **kwargs) -> None:
    """connection_created receiver: a worker's pool counts the connections its workers open."""
    worker = getattr(worker_state, "worker", None)
    if worker is not None:
        worker.pool.count("connections_opened")


def close_thread_connections() -> None:
    """Close every connection this thread opened (a thread about to die leaks them otherwise)."""
    for conn in connections.all(initialized_only=True):
        conn.close()


def give_back_turn() -> None:
    """On a worker thread, inside its job: what is left of the job waits on the database (a
    COMMIT's flush to disk), not for the GIL, so its turn goes to the next waiting job now.
    The worker stays leased; the job finishes without a turn. Elsewhere: does nothing."""
    worker = getattr(worker_state, "worker", None)
    if worker is not None and worker.holds_turn:
        worker.holds_turn = False
        worker.pool._turn_done()


class DatabaseWorker:
    """One thread, one set of Django connections, one job at a time."""

    def __init__(self, pool: DatabaseWorkerPool, number: int, overflow: bool) -> None:
        self.pool = pool
        self.overflow = overflow
        # Whether the running job still counts as one of the pool's running jobs (its turn).
        self.holds_turn = False
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.idle_since = time.monotonic()
        # host:port of the writable server its connection reaches, as last seen (arv.db.failover).
        self.writable_server: str | None = None
        # Its thread's Django connection to the pool's database, as of its last unit's end (for
        # reads on the event loop while it is leased, arv.db.on_loop), and the psycopg
        # AsyncConnection those reads use on the same PostgreSQL session.
        self.connection: Any = None
        self.loop_connection: Any = None
        name = f"arv-db-{number}" if pool.alias == DEFAULT_DB_ALIAS else f"arv-db-{pool.alias}-{number}"
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run fn(*args) on this worker's thread; the result arrives on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # Carry the caller's context (as sync_to_async does) so contextvars set by the request are seen.
        self.pool._submit(self, (contextvars.copy_context(), fn, args, future), loop)
        return future

    def stop(self) -> None:
        self.jobs.put(_STOP)

    def _serve(self) -> None:
        worker_state.worker = self
        try:
            while (job := self.jobs.get()) is not _STOP:
                self._run(*job)
                # No reference to the job left while the worker waits for the next: it would keep the
                # request's objects (its context, its answer) alive until then.
                del job
        finally:
            close_thread_connections()
            self.pool._forget(self)

    def _run(
        self, context: contextvars.Context, fn: Callable[..., Any], args: Any, future: asyncio.Future[Any]
    ) -> None:
        self.holds_turn = True  # every job given to a worker was counted as running
        try:
            result, exc = context.run(fn, *args), None
        except BaseException as error:  # noqa: BLE001 - handed to the awaiting request
            result, exc = None, error
        give_back_turn()  # unless the job gave it back already
        _deliver(future, result, exc)


def _deliver(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # the request was cancelled meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # that loop is closed: nobody is waiting any more
        pass


@dataclass
class PoolStatus:
    """What `manage.py dbstatus` and the verbose health check report."""

    database: str
    pool_size: int
    max_overflow: int
    max_connections: int
    workers: int
    in_use: int
    idle: int
    waiting: int
    workers_started: int
    timeouts: int
    connections_opened: int
    reconnects: int
    running_jobs_limit: int
    jobs_running: int
    jobs_waiting_turn: int
    units: int = 0
    # Workers whose connection reaches a writable primary (as last seen): readiness wants DB_POOL_SIZE.
    ready_connections: int = 0


class DatabaseWorkerPool:
    active_wait = ACTIVE_WAIT_SECONDS

    def __init__(self, config: PoolSettings, alias: str = DEFAULT_DB_ALIAS) -> None:
        self.config = config
        self.alias = alias  # the database its workers connect to
        self.units = 0  # units of work that leased a worker since start (counted by arv.db.transaction)
        self._lock = threading.Lock()
        self._workers: set[DatabaseWorker] = set()
        self._idle: deque[DatabaseWorker] = deque()
        self._waiters: deque[asyncio.Future[DatabaseWorker]] = deque()
        self._numbers = 0
        # Events counted since the pool was made (status() reports them, arv.metrics reads them).
        self._counts = {"timeouts": 0, "connections_opened": 0, "reconnects": 0}
        self._closed = False
        # Jobs running now, and jobs waiting their turn: (since, worker, job), oldest first.
        self._running = 0
        self._turns: deque[tuple[float, DatabaseWorker, Any]] = deque()

    # -- running jobs: at most config.running_jobs at once -------------------------

    def _submit(self, worker: DatabaseWorker, job: Any, loop: asyncio.AbstractEventLoop) -> None:
        # On the event loop. Strictly in order: a job never overtakes an earlier one, so a
        # worker's jobs (a commit, then the next request's first query) keep their order.
        limit = self.config.running_jobs
        with self._lock:
            if not limit or (self._running < limit and not self._turns):
                self._running += 1
                worker.jobs.put(job)
                return
            self._turns.append((time.monotonic(), worker, job))
        loop.call_later(self.active_wait, self._run_overdue)

    def _turn_done(self) -> None:
        # On the worker thread whose job finished or gave its turn back: hand the turn to the
        # oldest waiting job.
        with self._lock:
            self._running -= 1
            if self._turns and self._running < self.config.running_jobs:
                self._start_next()

    def _run_overdue(self) -> None:
        # Jobs that waited active_wait run anyway (the oldest first, so order holds).
        overdue = time.monotonic() - self.active_wait + 0.001
        with self._lock:
            while self._turns and self._turns[0][0] <= overdue:
                self._start_next()

    def _start_next(self) -> None:
        # Caller holds the lock.
        _, worker, job = self._turns.popleft()
        self._running += 1
        worker.jobs.put(job)

    # -- leasing, on the event loop -------------------------------------------------

    def try_acquire(self) -> DatabaseWorker | None:
        """Lease a worker without waiting: an idle one, or a new one while under the bound."""
        with self._lock:
            return self._take()

    async def acquire(self) -> DatabaseWorker:
        """Lease a worker: an idle one, a new one while under the bound, else wait in line."""
        loop = asyncio.get_running_loop()
        with self._lock:
            worker = self._take()
            if worker is not None:
                return worker
            waiter: asyncio.Future[DatabaseWorker] = loop.create_future()
            self._waiters.append(waiter)
        timer = loop.call_later(self.config.timeout, self._expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # Handed a worker just as we were cancelled: give it back.
                    self._hand_over(waiter.result())
            raise
        finally:
            timer.cancel()

    def _take(self) -> DatabaseWorker | None:
        # Caller holds the lock.
        if self._closed:
            raise PoolClosed("the database pool is closed")
        if self._idle:
            return self._idle.pop()  # the most recently used: its connection is warm
        if len(self._workers) < self.config.max_connections:
            return self._spawn()
        return None

    # -- for the pool keeper (arv.db.readiness): warm-up and connection checks -----------

    def lease_unopened(self) -> DatabaseWorker | None:
        """A new worker while the pool has fewer than DB_POOL_SIZE, else None (never waits)."""
        with self._lock:
            if self._closed or len(self._workers) >= self.config.size:
                return None
            return self._spawn()

    def lease_idle(self) -> DatabaseWorker | None:
        """The idle worker unused the longest, else None (never spawns, never waits)."""
        with self._lock:
            if self._closed or not self._idle:
                return None
            return self._idle.popleft()

    def forget_servers(self) -> None:
        """A connection lost its server: no other connection counts as ready until checked again."""
        with self._lock:
            for worker in self._workers:
                worker.writable_server = None

    def release(self, worker: DatabaseWorker) -> None:
        """Give a leased worker back (its unit of work is finished)."""
        with self._lock:
            self._hand_over(worker)

    def _hand_over(self, worker: DatabaseWorker) -> None:
        # Caller holds the lock.
        if self._closed:
            worker.stop()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.get_loop().call_soon_threadsafe(_settle_waiter, waiter, worker, self)
                return
        worker.idle_since = time.monotonic()
        self._idle.append(worker)
        if worker.overflow:
            try:
                asyncio.get_running_loop().call_later(OVERFLOW_IDLE_SECONDS + 0.1, self._retire_idle_overflow)
            except RuntimeError:  # released outside a loop (tests, shutdown): retire later
                pass

    def _expire(self, waiter: asyncio.Future[DatabaseWorker]) -> None:
        with self._lock:
            if waiter.done():
                return
            self._counts["timeouts"] += 1
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass
        waiter.set_exception(PoolTimeout(f"no database connection became free within {self.config.timeout:g}s"))

    def _spawn(self) -> DatabaseWorker:
        # Caller holds the lock.
        self._numbers += 1
        overflow = len(self._workers) >= self.config.size
        worker = DatabaseWorker(self, self._numbers, overflow=overflow)
        self._workers.add(worker)
        return worker

    def _retire_idle_overflow(self) -> None:
        now = time.monotonic()
        with self._lock:
            for worker in list(self._idle):
                if worker.overflow and now - worker.idle_since >= OVERFLOW_IDLE_SECONDS:
                    self._idle.remove(worker)
                    worker.stop()

    def _forget(self, worker: DatabaseWorker) -> None:
        # Called by a worker thread as it exits.
        with self._lock:
            self._workers.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)

    # -- lifecycle and status ------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker; each closes its connections. Leased workers stop when released."""
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), deque()
            workers = list(self._workers)
            waiters, self._waiters = list(self._waiters), deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.get_loop().call_soon_threadsafe(_fail_waiter, waiter)
        for worker in idle:
            worker.stop()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))

    def count(self, event: str) -> None:
        """One more of an event status() reports (connections_opened, reconnects)."""
        with self._lock:
            self._counts[event] += 1

    def status(self) -> PoolStatus:
        with self._lock:
            workers = len(self._workers)
            idle = len(self._idle)
            return PoolStatus(
                database=self.alias,
                pool_size=self.config.size,
                max_overflow=self.config.max_overflow,
                max_connections=self.config.max_connections,
                workers=workers,
                in_use=workers - idle,
                idle=idle,
                waiting=sum(1 for w in self._waiters if not w.done()),
                workers_started=self._numbers,
                **self._counts,
                running_jobs_limit=self.config.running_jobs,
                jobs_running=self._running,
                jobs_waiting_turn=len(self._turns),
                units=self.units,
                ready_connections=sum(1 for w in self._workers if w.writable_server is not None),
            )


def _settle_waiter(waiter: asyncio.Future[DatabaseWorker], worker: DatabaseWorker, pool: DatabaseWorkerPool) -> None:
    if waiter.done():  # timed out or cancelled in the meantime: pass the worker on
        pool.release(worker)
    else:
        waiter.set_result(worker)


def _fail_waiter(waiter: asyncio.Future[DatabaseWorker]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolClosed("the database pool is closed"))


_pools: dict[str, DatabaseWorkerPool] = {}
_pool_lock = threading.Lock()


def get_pool(alias: str = DEFAULT_DB_ALIAS) -> DatabaseWorkerPool:
    """The process's pool for one database (default: the primary), made on first use from
    settings.DATABASE_POOL."""
    with _pool_lock:
        pool = _pools.get(alias)
        if pool is None or pool._closed:
            pool = _pools[alias] = DatabaseWorkerPool(settings.DATABASE_POOL, alias)
        return pool


def all_pools() -> list[DatabaseWorkerPool]:
    """Every database's pool: the primary's, then each replica's (arv.db.replicas)."""
    return [get_pool(alias) for alias in settings.DATABASES]


def close_pool() -> None:
    """Shut the process's pools down (ASGI lifespan shutdown)."""
    with _pool_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()

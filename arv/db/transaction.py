"""A request's unit of work: one leased database worker, one transaction.

Django's ATOMIC_REQUESTS refuses async views, django-ninja turns exceptions into
responses before any middleware sees them, and Django's async ORM runs on
whatever thread asgiref picks. So the unit of work is kept here and the
pipeline (arv.pipeline) opens one for every request that is not a static file:

- The first database call leases a worker (arv.db.workers) and begins
  `transaction.atomic(durable=True)` on its connection; every later call runs on
  the same worker, inside the same transaction. A client that disconnects while
  its request waits for a worker is not run (ClientDisconnected).
- Five ways in, one unit:
    `await read(query, ...)`           a compiled read (arv.db.on_loop): before the transaction
                                       began, on the event loop with no trip to the worker's
                                       thread, where it may; else a trip as run_db;
    `await run_db(fn, ...)`            sync code (services, selectors) from an async view;
    `await run_db_last(fn, ...)`       a request's last call: fn, then the commit, in the
                                       same trip (arv.web.shaping.finish_db shapes fn's
                                       result as the view's answer there);
    `await unit.insert_last(obj, shape)` a request's last call, one new row: inserted,
                                       shaped and committed on the event loop where it may
                                       (arv.db.on_loop), else as run_db_last
                                       (arv.web.shaping.finish_insert);
    Django's async ORM (`aget`, `acreate`, `async for`, ...) and any
    `sync_to_async(...)`: asgiref sends thread-sensitive calls to the unit's executor
    (ThreadSensitiveContext in `unit.serve`), which makes each a trip of this unit.
  An async request runs in `unit.serve(respond)`; a sync one (the admin) runs whole
  on the worker: `unit.serve_sync(respond)`.
- The pipeline ends the unit when the response is ready: commit if its status is
  below 400 (or the response says `keep_writes`), else roll back, and gives the worker back.
- Every database error a trip raises is noted on the unit (`unit.failure`), so
  the pipeline can tell a deadlock (run the request again) from an outage (503)
  even after a view turned the error into a response.
- Work that waits on something else (a remote service, a disk) must not hold a worker
  meanwhile. `await run_outside_db(fn, ...)` (async views, the API's and the admin's)
  commits what the request did so far, gives the worker back and runs fn on a thread of
  its own, where the connection guard refuses any database use; the next
  `run_db`/`run_db_last` leases a worker again and begins a fresh transaction, which the
  pipeline ends as usual. The request is then marked as having acted outside the
  database (never run twice).

With read replicas (arv.db.replicas) a unit runs on the database its route names: its
worker comes from that database's pool, and its transaction is on that database. A unit on
a replica first checks the client's read-after position (NeedsPrimary if the replica is
behind); a unit on the primary that wrote notes its commit's WAL position (unit.read_after).

At the start and end of each unit the worker runs Django's own connection
upkeep: close the connection if it is older than CONN_MAX_AGE or broken, and
with CONN_HEALTH_CHECKS ping a reused connection before its first query, unless
the unit may skip the ping (trusts_connection): then a connection found dead by
its first query is replaced and the request runs once more (arv.pipeline), the
same guarantee for one round trip less per request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, copy_context
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import ThreadSensitiveContext
from django.db import connections, transaction
from django.db.models import Model

from arv.db import on_loop, replicas
from arv.db.errors import DATABASE_ERRORS
from arv.db.failover import note_connection_state, replace_if_lost
from arv.db.workers import DatabaseWorker, DatabaseWorkerPool, give_back_turn, worker_database, worker_state

if TYPE_CHECKING:
    from arv.db.queries import CompiledQuery

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M", bound=Model)

_current: ContextVar[UnitOfWork | None] = ContextVar("arv_unit_of_work", default=None)


# A BaseException (as CancelledError): it must pass any `except Exception` in the view it interrupts.
class ClientDisconnected(BaseException):
    """The client left before its request got a worker: nothing was run, nobody to answer."""


class UnitOfWork:
    """One request's database work: a leased worker and the transaction open on its connection."""

    def __init__(
        self,
        pool: DatabaseWorkerPool,
        client_left: Callable[[], bool] | None = None,
        route: replicas.Route = replicas.PRIMARY,
        *,
        may_run_again: bool = False,
    ) -> None:
        self.pool = pool
        # Whether the pipeline would run the request once more after its connection is found
        # lost (a first run, served with every trip's failure noted: serve()); see trusts_connection.
        self.may_run_again = may_run_again
        self._serving_async = False
        # Where it reads (pool is that database's): a replica's unit checks the client's position first.
        self.route = route
        # The WAL position of its last commit that wrote (for the client's next reads), if any.
        self.read_after: int | None = None
        # Why a unit on a replica stopped to run on the primary instead (the pipeline reruns it).
        self.needs_primary: replicas.NeedsPrimary | None = None
        self.worker: DatabaseWorker | None = None
        # True from the trip that begins its transaction until the trip that ends it.
        self.in_transaction = False
        self.finished = False
        # The first database error a trip raised (the pipeline decides what it means).
        self.failure: BaseException | None = None
        # False once the request did something outside the database (it must not run twice).
        self.retryable = True
        # Seconds it waited for each worker it leased, and its trips ran on a worker (the
        # pipeline reports both to the metrics once the unit is done).
        self.lease_waits: list[float] = []
        # True once its commit was sent: a failure from then on leaves its outcome unknown.
        self.commit_started = False
        # True if a trip's connection lost its server (arv.db.failover): a fresh unit may succeed.
        self.connection_lost = False
        self.database_seconds = 0.0
        self._client_left = client_left
        # Work the next trip runs first (before_next_trip).
        self._before_next_trip: list[Callable[[], Any]] = []
        self._leasing = asyncio.Lock()

    # -- what views and the pipeline call --------------------------------------------------

    def before_next_trip(self, fn: Callable[[], Any]) -> None:
        """fn() first in the unit's next trip, in its transaction, before the trip's own work:
        work a request needs before its view's that should not cost a trip of its own (a
        bearer token's lookup, arv.auth.callers). If fn raises, the trip's own work does not
        run and the error is the trip's. If the unit reads on the event loop first
        (arv.db.on_loop), `await fn.on_loop(read)` runs there instead (read(query, **values)
        reads on the loop); fn without on_loop keeps the unit's reads on the worker."""
        self._before_next_trip.append(fn)

    async def run(self, fn: Callable[[], T], *, last: bool = False) -> T:
        """fn() on the leased worker, in the transaction; last=True also ends the transaction."""
        if self.finished:
            raise RuntimeError("this request's database work is already committed (run_db_last ran)")
        if self._before_next_trip:
            fn = _preceded(self._before_next_trip, fn)
            self._before_next_trip = []
        if not self.in_transaction:
            async with self._leasing:
                if not self.in_transaction:
                    if self.worker is None:
                        self.worker = await self._lease()
                    self.in_transaction = True
                    return await self._trip(fn, begin=True, end=last)
        return await self._trip(fn, begin=False, end=last)

    async def read(self, query: CompiledQuery[Any], values: dict[str, Any]) -> Any:
        """query's rows (a CompiledCount's count) for values: on the event loop if the transaction
        has not begun and it may (arv.db.on_loop), else a trip to the worker, in the transaction."""
        async with self._leasing:  # no trip begins meanwhile: they would share the session
            if await self._reads_on_loop():
                return await on_loop.execute(self, query, values)
        return await self.run(functools.partial(query.run, **values))

    async def insert_last(self, instance: Model, shape: Callable[[Model], T]) -> T:
        """A request's last database work: instance (a new row, validated) inserted, shape(instance),
        then the commit. On the event loop where the unit reads there now and the row allows it
        (on_loop.may_insert_on_loop): BEGIN with the INSERT, then COMMIT, no trip to the worker's
        thread. Else a last trip to the worker, with Model.save(force_insert=True)."""
        async with self._leasing:
            # _reads_on_loop: the same conditions as a read's, and the work that must come first
            # (a bearer token's lookup) has run.
            if await self._reads_on_loop() and on_loop.may_insert_on_loop(self, instance):
                return await on_loop.insert_last(self, instance, shape)
        return await self.run(functools.partial(_inserted_and_shaped, instance, shape), last=True)

    async def reads_on_loop(self) -> bool:
        """Whether the unit's reads run on the event loop now (arv.db.on_loop); if so, the work
        before_next_trip was given (a bearer token's lookup) has run there."""
        async with self._leasing:
            return await self._reads_on_loop()

    async def serve(self, respond: Callable[[], Awaitable[R]]) -> R | None:
        """An async request in this unit: respond() runs with the unit current and Django's
        async ORM sent to its worker; then commit if the response's status is below 400, else
        roll back. None if the commit failed (the error is in self.failure)."""
        token = _current.set(self)
        self._serving_async = True
        try:
            # The executor lives for this call only: kept on the unit, the pair would form a
            # reference cycle, and every request would leave its objects (the unit, uvicorn's
            # request cycle) to Python's cyclic GC, which a server runs rarely
            # (arv.pipeline.GC_YOUNG_THRESHOLD): they would pile up between its collections.
            async with ThreadSensitiveContext(executor=_UnitExecutor(self)):
                response = await respond()
        except BaseException:
            await asyncio.shield(self.finish(commit=False))
            raise
        finally:
            _current.reset(token)
        try:
            await self.finish(commit=_succeeded(response))
        except DATABASE_ERRORS:
            return None
        return response

    async def serve_sync(self, respond: Callable[[], R]) -> R:
        """A sync request (middleware, view, rendering) in one trip to the worker: begin,
        respond(), then commit if the response's status is below 400, else roll back."""
        token = _current.set(self)  # the trip runs in a copy of this context
        try:
            self.worker = await self._lease()
            return await self._trip(respond, begin=True, end=True, commit=_succeeded)
        finally:
            _current.reset(token)

    async def finish(self, *, commit: bool) -> None:
        """End the transaction (commit or roll back) and give the worker back."""
        if self.worker is None:
            return
        if self.in_transaction:
            await self._trip(_nothing, begin=False, end=True, commit=_always if commit else _never)
            return
        worker, self.worker, self.finished = self.worker, None, True  # it only read, on the loop
        on_loop.after_reads(self, worker)
        self.pool.release(worker)

    def trusts_connection(self, worker: DatabaseWorker) -> bool:
        """Whether this unit may use its worker's reused connection without the health check's
        ping (a round trip): the connection reached a working server at the end of its last
        unit and no connection was lost since (failover.connection_lost forgets every one),
        and if it is dead after all, the pipeline replaces it and runs the request once more
        (every trip's failure is noted, nothing outside the database was done, it is a first
        run). A sync request (the admin's) may meet the failure in a middleware that answers
        500 itself: it always pings."""
        return self.may_run_again and self._serving_async and self.retryable and worker.writable_server is not None

    def note_failure(self, exc: BaseException, wrapper: Any, worker: DatabaseWorker | None = None) -> None:
        """A database error its work raised on `wrapper` (a Django connection of the worker's),
        on the worker or on the event loop: the first one is the unit's failure (the pipeline
        decides what it means), and a connection whose server is gone or no longer the primary
        is never reused (counted as a reconnect; the request may run once more)."""
        self.failure = self.failure or exc
        if replace_if_lost(exc, wrapper=wrapper, worker=worker):
            self.connection_lost = True
            self.pool.count("reconnects")

    def outside_database(self) -> None:
        """The request is about to act outside the database: never run it a second time."""
        self.retryable = False

    async def outside(self, fn: Callable[[], T]) -> T:
        """fn() on a thread of its own, no worker held: what the request did so far is
        committed and its worker given back; the next trip leases one and begins anew."""
        if self.finished:
            raise RuntimeError("this request's database work is already committed (run_db_last ran)")
        self.outside_database()
        if self._before_next_trip:  # what must come first (a token's lookup) does, before acting
            await self.run(_nothing)
        if self.worker is not None:
            await self.finish(commit=True)
        self.finished = False
        return await in_own_thread(fn)

    # -- internals --------------------------------------------------------------------------

    async def _reads_on_loop(self) -> bool:
        """With _leasing held: whether the unit reads on the event loop now (a worker leased,
        no transaction begun, on_loop.may_read_on_loop); if so, the work before_next_trip was
        given has run there first."""
        if self.finished or self.in_transaction or not all(hasattr(w, "on_loop") for w in self._before_next_trip):
            return False
        if self.worker is None:
            self.worker = await self._lease()
        if not on_loop.may_read_on_loop(self, self.worker):
            return False
        first, self._before_next_trip = self._before_next_trip, []
        for work in first:
            # Work that must come first reads on the loop too: `on_loop(read)`, read(query, **values).
            await work.on_loop(self._read_on_loop)
        return True

    async def _read_on_loop(self, query: CompiledQuery[Any], /, **values: Any) -> Any:
        return await on_loop.execute(self, query, values)

    async def _lease(self) -> DatabaseWorker:
        self.pool.units += 1  # on the event loop: the units each database served
        worker = self.pool.try_acquire()
        if worker is not None:
            self.lease_waits.append(0.0)
            return worker
        started = time.perf_counter()
        try:
            worker = await self.pool.acquire()
        finally:
            self.lease_waits.append(time.perf_counter() - started)
        # It waited in line: if its client left meanwhile, nobody wants the answer. (Checked
        # once it has its worker, not watched throughout: a watch per waiting request costs
        # the event loop more than the rare abandoned request does.)
        if self._client_left is not None and self._client_left():
            self.pool.release(worker)
            raise ClientDisconnected()
        return worker

    async def _trip(
        self, fn: Callable[[], T], *, begin: bool, end: bool, commit: Callable[[Any], bool] | None = None
    ) -> T:
        """One job on the worker; commit(result) decides the end of the transaction (default: commit)."""
        worker = self.worker
        assert worker is not None
        trusted = begin and self.trusts_connection(worker)
        done = worker.call(_step, self, fn, begin, trusted, end, commit or _always)
        if not end:
            return await done
        self.worker, self.finished, self.in_transaction = None, True, False
        # Back to the pool once the job has run, not before: a worker still busy with a
        # long commit (or one waiting for a lock) is not free, and DB_POOL_TIMEOUT must hold.
        done.add_done_callback(lambda _: self.pool.release(worker))
        return await asyncio.shield(done)


class _UnitExecutor(concurrent.futures.Executor):
    """asgiref's thread-sensitive calls (Django's async ORM) sent to the unit's worker.

    ThreadSensitiveContext(executor=_UnitExecutor(unit)) makes `sync_to_async` submit here
    from the event loop; each call becomes a trip inside the unit's transaction.
    """

    def __init__(self, unit: UnitOfWork) -> None:
        self.unit = unit

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        result: concurrent.futures.Future[T] = concurrent.futures.Future()
        trip = asyncio.ensure_future(self.unit.run(_bind(fn, args, kwargs)))

        def settle(done: asyncio.Future[T]) -> None:
            if done.cancelled():
                result.cancel()
            elif done.exception() is not None:
                result.set_exception(done.exception())
            else:
                result.set_result(done.result())

        trip.add_done_callback(settle)
        return result


def current_unit() -> UnitOfWork:
    unit = _current.get()
    if unit is None:
        raise RuntimeError("run_db() is for code serving a request (arv.pipeline opens its unit of work)")
    return unit


async def run_db(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run fn on the current request's database worker, inside the request's transaction."""
    return await current_unit().run(_bind(fn, args, kwargs))


async def run_db_last(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """A request's last database work: fn on its worker, then its transaction committed in
    the same trip (fn's error rolls it back). No database work may follow."""
    return await current_unit().run(_bind(fn, args, kwargs), last=True)


async def run_outside_db(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run fn (no database use: the guard refuses it) on a thread of its own, holding no
    worker meanwhile. What the request wrote before is committed first; later database
    calls run in a fresh transaction. For waits on remote services or disks."""
    return await current_unit().outside(_bind(fn, args, kwargs))


async def in_own_thread(fn: Callable[[], T]) -> T:
    """fn() on a new daemon thread (not a shared executor, which slow calls would fill up),
    in a copy of the caller's context (the request id of its log lines)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result = context.run(fn)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="arv-outside-db", daemon=True).start()
    return await done


def outside_database() -> None:
    """Call before acting outside the database (a file, a remote service): the request is
    then never run a second time after a deadlock. Sync code may call it too (a service on
    the worker sees its request's unit); outside a request it does nothing."""
    unit = _current.get()
    if unit is not None:
        unit.outside_database()


def inserted(instance: M) -> M:
    """instance saved as a new row (an INSERT, never an UPDATE)."""
    instance.save(force_insert=True)
    return instance


def _inserted_and_shaped(instance: Model, shape: Callable[[Model], T]) -> T:
    return shape(inserted(instance))


def _preceded(first: list[Callable[[], Any]], fn: Callable[[], T]) -> Callable[[], T]:
    def run_all() -> T:
        for call in first:
            call()
        return fn()

    return run_all


def _bind(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], T]:
    return functools.partial(fn, *args, **kwargs) if args or kwargs else fn


def keep_writes(response: Any) -> Any:
    """Commit the request's writes although the response's status is 400 or more.

    For an answer that refuses *because of* what the request recorded: the admin's
    login lockout (429) must keep the failed attempt that caused it (arv.auth.middleware).
    """
    response.arv_keep_writes = True
    return response


def _succeeded(response: Any) -> bool:
    return response.status_code < 400 or getattr(response, "arv_keep_writes", False)


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _step(
    unit: UnitOfWork, fn: Callable[[], T], begin: bool, trusted: bool, end: bool, commit: Callable[[T], bool]
) -> T:
    """One trip to the worker: begin the transaction if asked (trusted: with no health check),
    run fn, end it if asked (committing only if fn succeeded and commit(result) says so)."""
    started = time.perf_counter()
    try:
        if begin and _begin(trusted):
            unit.pool.count("reconnects")
        try:
            if begin and unit.route.on_replica:
                replicas.check_replayed(unit.route)  # else NeedsPrimary, the transaction ended below
            result = fn()
        except BaseException:
            if end:
                _end(commit=False)
            raise
        if end:
            unit.commit_started = commit(result)
            if _end(commit=unit.commit_started):
                unit.read_after = replicas.position_after_commit() or unit.read_after
        return result
    except DATABASE_ERRORS as exc:
        unit.note_failure(exc, connections[worker_database()])
        raise
    finally:
        unit.database_seconds += time.perf_counter() - started


def _nothing() -> None:
    pass


def _begin(trusted: bool) -> bool:
    """Begin the unit's transaction (trusted: on its connection as it is, no health check);
    True if the health check replaced the connection."""
    for conn in connections.all(initialized_only=True):
        conn.queries_log.clear()
        conn.close_if_unusable_or_obsolete()  # CONN_MAX_AGE, broken connections
    database = worker_database()  # the primary, or the replica this worker's pool serves
    reused = connections[database].connection
    if trusted:
        connections[database].health_check_done = True  # Django's flag: no ping before the first query
    atomic = transaction.atomic(using=database, durable=True)
    atomic.__enter__()  # with CONN_HEALTH_CHECKS, pings a reused connection first
    worker_state.atomic = atomic
    replicas.transaction_began()
    # A reused connection that is not there any more: the ping failed, Django connected again.
    return reused is not None and connections[database].connection is not reused


def _end(commit: bool) -> bool:
    """End the transaction; True if it committed."""
    atomic = getattr(worker_state, "atomic", None)
    worker_state.atomic = None
    try:
        if atomic is not None:
            if not commit:
                transaction.set_rollback(True, using=atomic.using)
            else:
                give_back_turn()  # COMMIT waits on the disk, not for the GIL (arv.db.workers)
            atomic.__exit__(None, None, None)
            return commit
        return False
    finally:
        replicas.transaction_ended()
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        note_connection_state(worker_database())  # what readiness counts (arv.db.readiness)

"""A request's unit of work: one leased database worker, one transaction.

Django's ATOMIC_REQUESTS refuses async views, django-ninja turns exceptions into
responses before any middleware sees them, and Django's async ORM runs on
whatever thread asgiref picks. So the unit of work is kept here and the
pipeline (arv.pipeline) opens one for every request that is not a static file:

- The first database call leases a worker (arv.db.workers) and begins
  `transaction.atomic(durable=True)` on its connection; every later call runs on
  the same worker, inside the same transaction. A client that disconnects while
  its request waits for a worker is not run (ClientDisconnected).
- Three ways in, one path:
    `await run_db(fn, ...)`            sync code (services, selectors) from an async view;
    `await run_db_last(fn, ...)`       a request's last call: fn, then the commit, in the
                                       same trip (arv.web.shaping.finish_db shapes fn's
                                       result as the view's answer there);
    Django's async ORM (`aget`, `acreate`, `async for`, ...) and any
    `sync_to_async(...)`: asgiref sends thread-sensitive calls to `unit.executor`
    (ThreadSensitiveContext), which is this unit.
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

At the start and end of each unit the worker runs Django's own connection
upkeep: close the connection if it is older than CONN_MAX_AGE or broken, and
with CONN_HEALTH_CHECKS ping a reused connection before its first query.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, copy_context
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from arv.db.errors import DATABASE_ERRORS
from arv.db.failover import note_connection_state, replace_if_lost
from arv.db.workers import DatabaseWorker, DatabaseWorkerPool, give_back_turn, worker_state

T = TypeVar("T")
R = TypeVar("R")

_current: ContextVar[UnitOfWork | None] = ContextVar("arv_unit_of_work", default=None)


# A BaseException (as CancelledError): it must pass any `except Exception` in the view it interrupts.
class ClientDisconnected(BaseException):
    """The client left before its request got a worker: nothing was run, nobody to answer."""


class UnitOfWork:
    """One request's database work: a leased worker and the transaction open on its connection."""

    def __init__(self, pool: DatabaseWorkerPool, client_left: Callable[[], bool] | None = None) -> None:
        self.pool = pool
        self.worker: DatabaseWorker | None = None
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
        self.executor = _UnitExecutor(self)

    # -- what views and the pipeline call --------------------------------------------------

    def before_next_trip(self, fn: Callable[[], Any]) -> None:
        """fn() first in the unit's next trip, in its transaction, before the trip's own work:
        work a request needs before its view's that should not cost a trip of its own (a
        bearer token's lookup, arv.auth.callers). If fn raises, the trip's own work does not
        run and the error is the trip's."""
        self._before_next_trip.append(fn)

    async def run(self, fn: Callable[[], T], *, last: bool = False) -> T:
        """fn() on the leased worker, in the transaction; last=True also ends the transaction."""
        if self.finished:
            raise RuntimeError("this request's database work is already committed (run_db_last ran)")
        if self._before_next_trip:
            fn = _preceded(self._before_next_trip, fn)
            self._before_next_trip = []
        if self.worker is None:
            async with self._leasing:
                if self.worker is None:
                    self.worker = await self._lease()
                    return await self._trip(fn, begin=True, end=last)
        return await self._trip(fn, begin=False, end=last)

    async def serve(self, respond: Callable[[], Awaitable[R]]) -> R | None:
        """An async request in this unit: respond() runs with the unit current and Django's
        async ORM sent to its worker; then commit if the response's status is below 400, else
        roll back. None if the commit failed (the error is in self.failure)."""
        token = _current.set(self)
        try:
            async with ThreadSensitiveContext(executor=self.executor):
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
        if self.worker is not None:
            await self._trip(_nothing, begin=False, end=True, commit=_always if commit else _never)

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

    async def _lease(self) -> DatabaseWorker:
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
        done = worker.call(_step, self, fn, begin, end, commit or _always)
        if not end:
            return await done
        self.worker, self.finished = None, True
        # Back to the pool once the job has run, not before: a worker still busy with a
        # long commit (or one waiting for a lock) is not free, and DB_POOL_TIMEOUT must hold.
        done.add_done_callback(lambda _: self.pool.release(worker))
        return await asyncio.shield(done)


class _UnitExecutor(concurrent.futures.Executor):
    """asgiref's thread-sensitive calls (Django's async ORM) sent to the unit's worker.

    ThreadSensitiveContext(executor=unit.executor) makes `sync_to_async` submit here
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


def _step(unit: UnitOfWork, fn: Callable[[], T], begin: bool, end: bool, commit: Callable[[T], bool]) -> T:
    """One trip to the worker: begin the transaction if asked, run fn, end it if asked
    (committing only if fn succeeded and commit(result) says so)."""
    started = time.perf_counter()
    try:
        if begin and _begin():
            unit.pool.count("reconnects")
        try:
            result = fn()
        except BaseException:
            if end:
                _end(commit=False)
            raise
        if end:
            unit.commit_started = commit(result)
            _end(commit=unit.commit_started)
        return result
    except DATABASE_ERRORS as exc:
        if unit.failure is None:
            unit.failure = exc
        if replace_if_lost(exc):  # its server is gone or no longer primary: never reused
            unit.connection_lost = True
        raise
    finally:
        unit.database_seconds += time.perf_counter() - started


def _nothing() -> None:
    pass


def _begin() -> bool:
    """Begin the unit's transaction; True if the health check replaced the connection."""
    for conn in connections.all(initialized_only=True):
        conn.queries_log.clear()
        conn.close_if_unusable_or_obsolete()  # CONN_MAX_AGE, broken connections
    reused = connections[DEFAULT_DB_ALIAS].connection
    atomic = transaction.atomic(durable=True)
    atomic.__enter__()  # with CONN_HEALTH_CHECKS, pings a reused connection first
    worker_state.atomic = atomic
    # A reused connection that is not there any more: the ping failed, Django connected again.
    return reused is not None and connections[DEFAULT_DB_ALIAS].connection is not reused


def _end(commit: bool) -> None:
    atomic = getattr(worker_state, "atomic", None)
    worker_state.atomic = None
    try:
        if atomic is not None:
            if not commit:
                transaction.set_rollback(True)
            else:
                give_back_turn()  # COMMIT waits on the disk, not for the GIL (arv.db.workers)
            atomic.__exit__(None, None, None)
    finally:
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        note_connection_state()  # what readiness counts (arv.db.readiness)

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
    `await finish_db(Schema, fn, ...)` a view's last call: fn's result shaped as the
                                       answer and committed in the same trip;
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
  meanwhile. `await run_outside_db(fn, ...)` (async views) commits what the request did
  so far, gives the worker back and runs fn on a thread of its own, where the connection
  guard refuses any database use; the next `run_db`/`finish_db` leases a worker again and
  begins a fresh transaction, which the pipeline ends as usual. A sync view (the admin)
  runs in one trip, so it asks instead: `outside_result(fn, ...)` ends that run (rolled
  back) with OutsideWorkNeeded; the pipeline runs fn off the worker, then runs the request
  again in a fresh unit, where the same call returns fn's result (or raises its error).
  Either way the request is marked as having acted outside the database (never run twice).

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
from pydantic import TypeAdapter

from arv.db.errors import DATABASE_ERRORS
from arv.db.failover import note_connection_state, replace_if_lost
from arv.db.workers import DatabaseWorker, DatabaseWorkerPool, worker_state
from arv.metrics.series import DATABASE_SECONDS, RECONNECTS, WORKER_WAIT_SECONDS

T = TypeVar("T")
R = TypeVar("R")

_current: ContextVar[UnitOfWork | None] = ContextVar("arv_unit_of_work", default=None)


class ClientDisconnected(BaseException):
    """The client left before its request got a worker: nothing was run, nobody to answer.

    A BaseException, like asyncio's CancelledError, so that no view or error
    handler turns it into a response on its way out to the pipeline.
    """


class RequestFailed(Exception):
    """Handed to atomic's __exit__ to make it roll back."""


class OutsideWorkNeeded(BaseException):
    """A sync request's run asked for work outside the database (outside_result): the run
    ends (rolled back) and the pipeline runs `call` off the worker, then the request again.

    A BaseException, so that Django's exception-to-response conversion lets it through.
    """

    def __init__(self, call: OutsideCall) -> None:
        super().__init__(call)
        self.call = call


# fn, args, kwargs of an outside_result() call; with what it returned or raised once run.
OutsideCall = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
OutsideDone = tuple[OutsideCall, Any, BaseException | None]


class UnitOfWork:
    """One request's database work: a leased worker and the transaction open on its connection."""

    def __init__(
        self,
        pool: DatabaseWorkerPool,
        client_left: Callable[[], bool] | None = None,
        outside_done: tuple[OutsideDone, ...] = (),
    ) -> None:
        self.pool = pool
        self.worker: DatabaseWorker | None = None
        self.finished = False
        # The first database error a trip raised (the pipeline decides what it means).
        self.failure: BaseException | None = None
        # False once the request did something outside the database (it must not run twice).
        self.retryable = not outside_done
        # A sync request's outside_result() calls already run by the pipeline, and the one it
        # asked for next (OutsideWorkNeeded).
        self.outside_done = outside_done
        self.outside_needed: OutsideCall | None = None
        # True once its commit was sent: a failure from then on leaves its outcome unknown.
        self.commit_started = False
        # True if a trip's connection lost its server (arv.db.failover): a fresh unit may succeed.
        self.connection_lost = False
        # Seconds its trips ran on the worker (the metrics' time in the database).
        self.database_seconds = 0.0
        self._client_left = client_left
        self._leasing = asyncio.Lock()
        self.executor = _UnitExecutor(self)

    # -- what views and the pipeline call --------------------------------------------------

    async def run(self, fn: Callable[[], T], *, last: bool = False) -> T:
        """fn() on the leased worker, in the transaction; last=True also ends the transaction."""
        if self.finished:
            raise RuntimeError("this request's database work is already committed (finish_db ran)")
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
            raise RuntimeError("this request's database work is already committed (finish_db ran)")
        self.outside_database()
        if self.worker is not None:
            await self.finish(commit=True)
        self.finished = False
        return await in_own_thread(fn)

    # -- internals --------------------------------------------------------------------------

    async def _lease(self) -> DatabaseWorker:
        worker = self.pool.try_acquire()
        if worker is not None:
            WORKER_WAIT_SECONDS.observe(0.0)
            return worker
        started = time.perf_counter()
        try:
            worker = await self.pool.acquire()
        finally:
            WORKER_WAIT_SECONDS.observe(time.perf_counter() - started)
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
        done.add_done_callback(lambda _: self._ended(worker))
        return await asyncio.shield(done)

    def _ended(self, worker: DatabaseWorker) -> None:
        self.pool.release(worker)
        DATABASE_SECONDS.observe(self.database_seconds)


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


async def finish_db(schema: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A view's last database work: fn's result shaped as `schema`, committed in the same hop.

    The shaping (pydantic, from model attributes) runs before the commit, so an
    answer that cannot be built rolls the work back. Return the result as the
    view's answer: ninja does not validate a schema instance a second time.
    """
    shape = _adapter(schema).validate_python
    bound = _bind(fn, args, kwargs)
    return await current_unit().run(lambda: shape(bound()), last=True)


async def run_outside_db(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run fn (no database use: the guard refuses it) on a thread of its own, holding no
    worker meanwhile. What the request wrote before is committed first; later database
    calls run in a fresh transaction. For waits on remote services or disks."""
    return await current_unit().outside(_bind(fn, args, kwargs))


def outside_result(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """For a sync view on its worker (the admin): fn(*args, **kwargs), run outside the
    database. The first time, this run ends (rolled back) and the pipeline runs fn off the
    worker, then the request again, where the same call (same fn and arguments) returns
    fn's result or raises its exception. What the view did before the call is done again in
    the second run (the first run's writes are rolled back)."""
    unit = current_unit()
    call = (fn, args, kwargs)
    for done, result, error in unit.outside_done:
        if done == call:
            if error is not None:
                raise error
            return result
    unit.outside_database()
    raise OutsideWorkNeeded(call)


async def run_outside_call(call: OutsideCall) -> OutsideDone:
    """What the pipeline does for OutsideWorkNeeded: the call, run on a thread of its own."""
    fn, args, kwargs = call
    try:
        return call, await in_own_thread(_bind(fn, args, kwargs)), None
    except Exception as exc:
        return call, None, exc


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


def _bind(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], T]:
    return functools.partial(fn, *args, **kwargs) if args or kwargs else fn


@functools.cache
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)


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
        if begin:
            _begin()
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


def _begin() -> None:
    for conn in connections.all(initialized_only=True):
        conn.queries_log.clear()
        conn.close_if_unusable_or_obsolete()  # CONN_MAX_AGE, broken connections
    reused = connections[DEFAULT_DB_ALIAS].connection
    atomic = transaction.atomic(durable=True)
    atomic.__enter__()  # with CONN_HEALTH_CHECKS, pings a reused connection first
    worker_state.atomic = atomic
    if reused is not None and connections[DEFAULT_DB_ALIAS].connection is not reused:
        RECONNECTS.inc()  # the ping failed: Django closed it and connected again


def _end(commit: bool) -> None:
    atomic = getattr(worker_state, "atomic", None)
    worker_state.atomic = None
    try:
        if atomic is not None:
            if commit:
                atomic.__exit__(None, None, None)
            else:
                atomic.__exit__(RequestFailed, RequestFailed(), None)
    finally:
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        note_connection_state()  # what readiness counts (arv.db.readiness)

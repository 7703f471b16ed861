"""Each API request is one transaction (what ATOMIC_REQUESTS does for sync views).

Django's ATOMIC_REQUESTS refuses async views, and django-ninja turns exceptions
into responses before any middleware sees them. So the unit of work is kept
here, around the whole request, and decided by the *outcome*:

    RequestTransactionMiddleware
        opens a RequestTransaction for the request;
        the view (and the authentication before it) call `await run_db(fn, ...)`:
            the first call leases a database worker (arv.db.workers) and begins
            `transaction.atomic(durable=True)` on its connection; later calls run
            on the same worker, inside the same transaction;
        a view's last call may be `await finish_db(Schema, fn, ...)`: it also
            shapes fn's result as the response schema and ends the transaction
            in the same trip to the worker: commit if all of that succeeded,
            roll back if anything raised. One thread hop fewer per request, and
            nothing that could still fail is left after the commit;
        otherwise, when the response is ready: commit if its status is below
        400, else roll back; release the worker. A failing commit turns the
        response into the error it is (409, 503).

The same checks Django runs on request_started / request_finished run at the
start and end of each unit of work on the worker's connection: close it if it
is older than CONN_MAX_AGE or broken, and with CONN_HEALTH_CHECKS ping a
reused connection before its first query.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse
from pydantic import TypeAdapter

from arv.db.errors import database_error_response
from arv.db.workers import DatabaseWorker, DatabaseWorkerPool, get_pool, worker_state
from arv.web.middleware import AsyncOnlyMiddleware

T = TypeVar("T")

_current: ContextVar[RequestTransaction | None] = ContextVar("arv_request_transaction", default=None)


class RequestFailed(Exception):
    """Handed to atomic's __exit__ to make it roll back."""


class RequestTransaction:
    """One request's unit of work: a leased worker and the transaction open on its connection."""

    def __init__(self, pool: DatabaseWorkerPool) -> None:
        self.pool = pool
        self.worker: DatabaseWorker | None = None
        self.finished = False
        self._leasing = asyncio.Lock()

    async def run(self, fn: Callable[[], T], *, last: bool = False) -> T:
        """fn() on the leased worker, in the transaction; last=True also ends the transaction."""
        if self.finished:
            raise RuntimeError("this request's database work is already committed (finish_db ran)")
        if self.worker is None:
            async with self._leasing:
                if self.worker is None:
                    self.worker = await self.pool.acquire()
                    return await self._trip(fn, begin=True, end=last)
        return await self._trip(fn, begin=False, end=last)

    async def finish(self, *, commit: bool) -> None:
        """End the transaction (commit or roll back) and give the worker back."""
        if self.worker is not None:
            await self._trip(_nothing, begin=False, end=True, commit=commit)

    async def _trip(self, fn: Callable[[], T], *, begin: bool, end: bool, commit: bool = True) -> T:
        worker = self.worker
        assert worker is not None
        done = worker.call(_step, fn, begin, end, commit)
        if not end:
            return await done
        self.worker, self.finished = None, True
        # Back to the pool once the job has run, not before: a worker still busy with a
        # long commit (or one waiting for a lock) is not free, and DB_POOL_TIMEOUT must hold.
        done.add_done_callback(lambda _: self.pool.release(worker))
        return await asyncio.shield(done)


async def run_db(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run fn on the current request's database worker, inside the request's transaction."""
    return await _current_unit().run(_bind(fn, args, kwargs))


async def finish_db(schema: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A view's last database work: fn's result shaped as `schema`, committed in the same hop.

    The shaping (pydantic, from model attributes) runs before the commit, so an
    answer that cannot be built rolls the work back. Return the result as the
    view's answer: ninja does not validate a schema instance a second time.
    """
    shape = _adapter(schema).validate_python
    bound = _bind(fn, args, kwargs)
    return await _current_unit().run(lambda: shape(bound()), last=True)


def _current_unit() -> RequestTransaction:
    current = _current.get()
    if current is None:
        raise RuntimeError("run_db() is for code running inside RequestTransactionMiddleware")
    return current


def _bind(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], T]:
    return functools.partial(fn, *args, **kwargs) if args or kwargs else fn


@functools.cache
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)


def _step(fn: Callable[[], T], begin: bool, end: bool, commit: bool) -> T:
    """One trip to the worker: begin the transaction if asked, run fn, end it if asked
    (committing only if asked to and fn succeeded)."""
    if begin:
        _begin()
    try:
        result = fn()
    except BaseException:
        if end:
            _end(commit=False)
        raise
    if end:
        _end(commit=commit)
    return result


def _nothing() -> None:
    pass


def _begin() -> None:
    for conn in connections.all(initialized_only=True):
        conn.queries_log.clear()
        conn.close_if_unusable_or_obsolete()  # CONN_MAX_AGE, broken connections
    atomic = transaction.atomic(durable=True)
    atomic.__enter__()  # with CONN_HEALTH_CHECKS, pings a reused connection first
    worker_state.atomic = atomic


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


class RequestTransactionMiddleware(AsyncOnlyMiddleware):
    """Wraps each API request in one RequestTransaction."""

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        unit = RequestTransaction(get_pool())
        token = _current.set(unit)
        try:
            response = await self.get_response(request)
        except BaseException:
            await asyncio.shield(unit.finish(commit=False))
            raise
        finally:
            _current.reset(token)
        try:
            await unit.finish(commit=response.status_code < 400)
        except DatabaseError as exc:
            return database_error_response(exc)
        return response

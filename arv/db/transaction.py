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
        when the response is ready: commit if its status is below 400, else
        roll back; release the worker. A failing commit turns the response
        into the error it is (409, 503).

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

from asgiref.sync import markcoroutinefunction
from django.db import DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse

from arv.db.errors import database_error_response
from arv.db.workers import DatabaseWorker, DatabaseWorkerPool, get_pool, worker_state

T = TypeVar("T")

_current: ContextVar[RequestTransaction | None] = ContextVar("arv_request_transaction", default=None)


class RequestFailed(Exception):
    """Handed to atomic's __exit__ to make it roll back."""


class RequestTransaction:
    """One request's unit of work: a leased worker and the transaction open on its connection."""

    def __init__(self, pool: DatabaseWorkerPool) -> None:
        self.pool = pool
        self.worker: DatabaseWorker | None = None
        self._leasing = asyncio.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.worker is None:
            async with self._leasing:
                if self.worker is None:
                    worker = await self.pool.acquire()
                    self.worker = worker
                    return await worker.call(_begin_then, fn, args)
        return await self.worker.call(fn, *args)

    async def finish(self, *, commit: bool) -> None:
        """End the transaction (commit or roll back) and give the worker back."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        ended = worker.call(_end, commit)
        # The worker's jobs run in order, so it can be handed on at once: the next
        # request's work queues behind this one's commit or rollback.
        self.pool.release(worker)
        await ended


async def run_db(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run fn on the current request's database worker, inside the request's transaction."""
    current = _current.get()
    if current is None:
        raise RuntimeError("run_db() is for code running inside RequestTransactionMiddleware")
    if kwargs:
        fn = functools.partial(fn, *args, **kwargs)
        args = ()
    return await current.run(fn, *args)


def _begin_then(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    for conn in connections.all(initialized_only=True):
        conn.queries_log.clear()
        conn.close_if_unusable_or_obsolete()  # CONN_MAX_AGE, broken connections
    atomic = transaction.atomic(durable=True)
    atomic.__enter__()  # with CONN_HEALTH_CHECKS, pings a reused connection first
    worker_state.atomic = atomic
    return fn(*args)


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


class RequestTransactionMiddleware:
    """Async-only middleware: wraps each API request in one RequestTransaction."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

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

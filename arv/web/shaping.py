"""A view's answer, shaped from its last database work: `await finish_db(Schema, fn, ...)`, from
a new row: `await finish_insert(Schema, prepare, ...)`, or from its reads: `await
answer_reads(Schema, fn, ...)`."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import SynchronousOnlyOperation
from django.db.models import Model
from pydantic import TypeAdapter

from arv.db.transaction import current_unit, inserted, run_db_last


async def finish_db(schema: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A view's last database work: fn's result shaped as `schema`, committed in the same trip.

    The shaping (pydantic, from model attributes) runs on the worker before the commit, so
    an answer that cannot be built rolls the work back. Return the result as the view's
    answer: ninja does not validate a schema instance a second time.
    """
    shape = _adapter(schema).validate_python
    return await run_db_last(lambda: shape(fn(*args, **kwargs)))


async def finish_insert(schema: Any, prepare: Callable[..., Model], /, **kwargs: Any) -> Any:
    """A view whose write is one new row, its last database work: prepare(**kwargs) checks the
    caller and returns the new instance, validated and unsaved (it writes nothing); the row is
    inserted, shaped as `schema` and committed.

    Where the request reads on the event loop (arv.db.on_loop), prepare runs there, and if it
    needs no database (Django refuses any query on the loop: SynchronousOnlyOperation, before
    anything is sent) the INSERT and the COMMIT run there too (UnitOfWork.insert_last): a
    create of ARV's costs no trip to a worker's thread. Else all of it runs on the worker,
    in one trip, as finish_db. (With DJANGO_ALLOW_ASYNC_UNSAFE set Django would run the query on
    the loop's thread, on a connection outside the pool: then always the worker.)
    """
    shape = _adapter(schema).validate_python
    unit = current_unit()
    if not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") and await unit.reads_on_loop():
        try:
            instance = prepare(**kwargs)
        except SynchronousOnlyOperation:
            pass  # it looks something up first (a session's permissions, a related row): the worker's
        else:
            return await unit.insert_last(instance, shape)
    return await run_db_last(lambda: shape(inserted(prepare(**kwargs))))


async def answer_reads(
    schema: Any, read: Callable[..., Awaitable[Any]], get: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """A read-only view's answer, from one selector in two forms: `await read(...)` (async,
    reading with arv.db.on_loop.read) where the request's reads run on the event loop, else
    `get(...)` (sync) on its worker, in one trip that also commits (finish_db). Either way it
    runs once the request's first work (a bearer token's lookup) has, so both may ask who the
    caller is; shaped as `schema`."""
    if await current_unit().reads_on_loop():
        return _adapter(schema).validate_python(await read(*args, **kwargs))
    return await finish_db(schema, get, *args, **kwargs)


@functools.cache
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)

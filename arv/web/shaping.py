"""A view's answer, shaped from its last database work: `await finish_db(Schema, fn, ...)`, or
from its reads: `await answer_reads(Schema, fn, ...)`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter

from arv.db.transaction import current_unit, run_db_last


async def finish_db(schema: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A view's last database work: fn's result shaped as `schema`, committed in the same trip.

    The shaping (pydantic, from model attributes) runs on the worker before the commit, so
    an answer that cannot be built rolls the work back. Return the result as the view's
    answer: ninja does not validate a schema instance a second time.
    """
    shape = _adapter(schema).validate_python
    return await run_db_last(lambda: shape(fn(*args, **kwargs)))


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

"""A view's answer, shaped from its last database work: `await finish_db(Schema, fn, ...)`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from arv.db.transaction import run_db_last


async def finish_db(schema: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """A view's last database work: fn's result shaped as `schema`, committed in the same trip.

    The shaping (pydantic, from model attributes) runs on the worker before the commit, so
    an answer that cannot be built rolls the work back. Return the result as the view's
    answer: ninja does not validate a schema instance a second time.
    """
    shape = _adapter(schema).validate_python
    return await run_db_last(lambda: shape(fn(*args, **kwargs)))


@functools.cache
def _adapter(schema: Any) -> TypeAdapter[Any]:
    return TypeAdapter(schema)

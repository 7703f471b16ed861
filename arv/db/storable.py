"""What PostgreSQL can store (and the API render back): the rule the model fields and the API
schemas share, so that neither layer imports the other."""

from __future__ import annotations

import math
from typing import Any

# PostgreSQL's integer ranges: larger numbers are a client error, not a database crash.
MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1


# Deeper JSON is refused: the renderer (orjson) stops at 254 levels, and no real
# metadata needs more than a handful.
MAX_JSON_DEPTH = 32


def postgres_storable(value: Any, _depth: int = 0) -> Any:
    """Reject what PostgreSQL cannot store in text or jsonb (NUL, lone surrogates, NaN/Infinity)
    and what the API could not render back (integers beyond 64 bits, nesting deeper than
    MAX_JSON_DEPTH)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
    elif isinstance(value, int) and not -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
        raise ValueError("integers must fit in 64 bits")  # what JSON renderers (orjson) can write back
    elif isinstance(value, dict | list):
        if _depth >= MAX_JSON_DEPTH:
            raise ValueError(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            postgres_storable(key, _depth + 1)
            postgres_storable(item, _depth + 1)
    return value

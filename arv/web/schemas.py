"""Building blocks for the apps' API schemas: strict input, and text PostgreSQL can store."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

# PostgreSQL's integer ranges: larger numbers are a client error, not a database crash.
MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1


def no_nul(value: Any) -> Any:
    """Reject NUL characters anywhere (PostgreSQL cannot store them in text or jsonb)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul(item)
    elif isinstance(value, list):
        for item in value:
            no_nul(item)
    return value


def text(max_length: int, min_length: int = 0) -> Any:
    """A trimmed string with length limits and no NUL characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(no_nul),
    ]


JsonObject = Annotated[dict[str, Any], AfterValidator(no_nul)]
ObjectId = Annotated[int, Field(ge=1, le=MAX_BIGINT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]


class InputSchema(Schema):
    """Request bodies: unknown fields are a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

"""Building blocks for the apps' API schemas: strict input, and text PostgreSQL can store."""

from __future__ import annotations

import math
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Schema, Status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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


def text(max_length: int, min_length: int = 0) -> Any:
    """A trimmed string with length limits and no NUL characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(postgres_storable),
    ]


JsonObject = Annotated[dict[str, Any], AfterValidator(postgres_storable)]
ObjectId = Annotated[int, Field(ge=1, le=MAX_BIGINT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]


class InputSchema(Schema):
    """Request bodies: unknown fields are a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class OutputSchema(BaseModel):
    """Response bodies, read straight from model attributes.

    A plain pydantic model with from_attributes: pydantic-core reads the
    attributes itself. ninja's Schema would wrap every object in its Python
    DjangoGetter first, about four times slower per object (bench/), and output
    schemas need none of its extras (resolvers, querysets as lists).
    """

    model_config = ConfigDict(from_attributes=True)


class ValidationErrorItem(Schema):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(Schema):
    """Every error answer (API.md): a message, or for 422 the list of what failed."""

    detail: str | list[ValidationErrorItem]


# The error answers any operation may give (documented in OpenAPI for generated clients).
ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 503)


def answers(success: Any) -> dict[int, Any]:
    """An operation's `response=`: its success schema ({status: schema}, or a schema for 200) and the errors."""
    responses = dict(success) if isinstance(success, dict) else {200: success}
    return {**responses, **dict.fromkeys(ERROR_STATUSES, ErrorOut)}


def created(request: HttpRequest, response: HttpResponse, shaped: Any) -> Status:
    """201 Created for a POST to a collection: Location is the new object's URL (collection/id)."""
    response["Location"] = request.build_absolute_uri(f"{request.path.rstrip('/')}/{shaped.id}")
    return Status(201, shaped)

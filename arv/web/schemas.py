"""Building blocks for the apps' API schemas: strict input, and text PostgreSQL can store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Schema, Status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from arv.db.storable import MAX_BIGINT, MAX_INT, postgres_storable


def text(max_length: int, min_length: int = 0) -> Any:
    """A trimmed string with length limits and no NUL characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(postgres_storable),
    ]


def in_utc(value: datetime) -> datetime:
    # As PostgreSQL gives it back: in UTC, a time without an offset read in Django's TIME_ZONE
    # (as a DateTimeField saves it), so an answer built from the saved instance reads as the row.
    return (value if timezone.is_aware(value) else timezone.make_aware(value)).astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(in_utc)]
JsonObject = Annotated[dict[str, Any], AfterValidator(postgres_storable)]
ObjectId = Annotated[int, Field(ge=1, le=MAX_BIGINT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]


class InputSchema(BaseModel):
    """Request bodies: unknown fields are a 422, not silently dropped.

    A plain pydantic model, as OutputSchema is: ninja's Schema runs a root validator in Python
    on every validation, which wraps the input in its DjangoGetter (for reading ORM objects):
    32 against 4 us for a company's create body.
    """

    model_config = ConfigDict(extra="forbid")


class QuerySchema(BaseModel):
    """Query parameters (a view's `Query[...]`): parameters it does not know are ignored. A plain
    pydantic model, for the reason InputSchema gives."""


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

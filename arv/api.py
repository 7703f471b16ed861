"""The API object: mounts each app's router and maps errors to API.md's JSON answers."""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError, connection
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as SchemaValidationError
from ninja.parser import Parser
from ninja.renderers import BaseRenderer
from ninja.responses import NinjaJSONEncoder

from arv.auth.callers import api_auth
from arv.auth.tokens import token_user
from arv.db.errors import DATABASE_ERRORS
from arv.db.readiness import readiness
from arv.db.transaction import run_db
from arv.db.workers import get_pool
from arv.web import error_answers
from arv.web.errors import Conflict, InvalidInput, validation_detail
from arv.web.schemas import answers
from companies.api import folders_router
from companies.api import router as companies_router
from storage.api import connections_router


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class ObjectBodyParser(Parser):
    """JSON bodies must be objects; anything else is a 400 (ninja answers parse errors so)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        # Strict: UTF-8 only (json.loads would guess UTF-16/32), no NaN or Infinity.
        data = json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data


class OrjsonRenderer(BaseRenderer):
    """orjson: several times faster than json + DjangoJSONEncoder; datetimes keep their +00:00 offset."""

    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        try:
            return orjson.dumps(data)
        except TypeError:
            # Integers beyond 64 bits: jsonb hands back a stored 1e300 as a 301-digit integer.
            return json.dumps(data, cls=NinjaJSONEncoder).encode()


class ArvAPI(NinjaAPI):
    def validation_error_from_error_contexts(self, error_contexts: list[Any]) -> SchemaValidationError:
        """A body's errors located as API.md's other 422s (and FastAPI's) locate them: `["body",
        field]`. ninja puts the view's parameter name between the two when the whole body is that
        one schema (`["body", "body", field]`), so the same field had two locations depending on
        whether the schema or the model refused it."""
        errors = []
        for context in error_contexts:
            whole_body = getattr(context.model, "__read_from_single_attr__", None)
            for error in super().validation_error_from_error_contexts([context]).errors:
                source, *rest = error["loc"]
                if whole_body and rest[:1] == [whole_body]:
                    error["loc"] = (source, *rest[1:])
                errors.append(error)
        return SchemaValidationError(errors)


api = ArvAPI(
    title="ARV API",
    version="1.0.0",
    # Relative to /api/docs, so it also works below a mount point (--root-path).
    description=(
        "Companies and their storage. The reference, with authentication, permissions, errors "
        "and curl examples: [API reference](reference) (docs/API.md in ARV's repository)."
    ),
    auth=api_auth,
    parser=ObjectBodyParser(),
    renderer=OrjsonRenderer(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    urls_namespace="api",
)
api.add_router("/companies", companies_router)
api.add_router("/companies", folders_router)
api.add_router("/storage", connections_router)


# Each error a view or service raises, as API.md's answer (built in arv.web.error_answers).


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_answers.unauthenticated()


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_answers.error(403, str(exc) or error_answers.FORBIDDEN)


@api.exception_handler(Conflict)
def conflict(request: HttpRequest, exc: Conflict) -> HttpResponse:
    return error_answers.error(409, str(exc))


@api.exception_handler(DataError)
def data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the database cannot store (schemas catch what they can; this is the backstop).
    return error_answers.error(422, [{"loc": ["body"], "msg": error_answers.UNSTORABLE, "type": "value_error"}])


@api.exception_handler(InvalidInput)
def invalid_input(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    return error_answers.error(422, exc.as_detail())


@api.exception_handler(ValidationError)
def invalid_model(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # A value the model's validators refuse: the services validate as the admin does.
    return error_answers.error(422, validation_detail(exc))


# A constraint the database enforced (unique, protected foreign key) is 409, an unreachable
# database 503, a deadlock the pipeline did not run again 409, anything else 500.
for database_error in DATABASE_ERRORS:
    api.add_exception_handler(database_error, lambda request, exc: error_answers.database_error(exc))


REFERENCE = settings.BASE_DIR / "docs" / "API.md"


@api.get("/reference", auth=None, include_in_schema=False)
async def reference(request: HttpRequest) -> HttpResponse:
    """docs/API.md, the reference the interactive docs link to (a file of the project, read per request)."""
    return HttpResponse(REFERENCE.read_bytes(), content_type="text/markdown; charset=utf-8")


class HealthOut(Schema):
    status: str
    database: str
    pool: dict[str, Any] | None = None


def _ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@api.get("/health", auth=None, tags=["health"], response=answers(HealthOut), exclude_none=True)
async def health(request: HttpRequest, verbose: bool = False):
    """200 when a query round-trips, else 503. Staff (bearer token) may ask for verbose=1."""
    try:
        await run_db(_ping)
    except DATABASE_ERRORS as exc:
        return error_answers.health_unavailable(exc)
    body: dict[str, Any] = {"status": "ok", "database": "ok"}
    if verbose:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = await run_db(token_user, token) if scheme.lower() == "bearer" and token else None
        if user is None or not user.is_staff:
            raise PermissionDenied("verbose health is for staff (bearer token) only.")
        body["pool"] = get_pool().status().__dict__
    return body


class ReadyOut(Schema):
    status: str
    database: str
    connections: int
    pool_size: int


@api.get("/health/ready", auth=None, tags=["health"], response=answers(ReadyOut))
async def health_ready(request: HttpRequest):
    """200 only when this process's pool holds its DB_POOL_SIZE connections to a server that
    accepts writes (opened at start-up, kept checked: arv.db.readiness), else 503. For load
    balancers and orchestrators; no worker, no query."""
    state = readiness()
    body = {
        "status": "ready" if state.ready else "unavailable",
        "database": state.reason,
        "connections": state.connections,
        "pool_size": state.wanted,
    }
    return body if state.ready else error_answers.not_ready(body)

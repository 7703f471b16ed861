"""Every error answer ARV sends is built here: one text per meaning.

Under /api/ an error is API.md's `{"detail": ...}` (JSON, never a page); anywhere else
(the admin) it is Django's own page where Django makes one, else the same sentence as
plain text. A 503 always carries `Retry-After`. The callers: the pipeline (413, a
database failure, an error page Django made under /api/), the API's exception handlers
(arv.api), the API's middleware (415) and the health check.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from arv.db.errors import Failure, classify, sqlstate, unavailable_cause
from arv.metrics.series import UNAVAILABLE

logger = logging.getLogger("arv.db")

# Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5

NOT_FOUND = "Not found."
UNAUTHENTICATED = "Authentication credentials were missing or invalid."
FORBIDDEN = "You may not do this."
# A unique value taken, an object still in use, or a concurrent request in the way.
CONFLICT = "Conflict with existing data or a concurrent request; try again."
UNSTORABLE = "A value cannot be stored."
NOT_JSON = "Send the body as JSON (Content-Type: application/json)."
INTERNAL = "Internal server error."

# Why the database is unavailable, as a client is told it (short and credential-free:
# never the driver's message, which may echo the DSN); keyed by arv.db.errors.unavailable_cause.
UNAVAILABLE_REASONS = {
    "no_primary": "no server accepts writes now (a failover)",
    "pool_timeout": "all connections are busy",
    "shutting_down": "the server is shutting down",
    "statement_timeout": "the query took too long",
    "unreachable": "it could not be reached",
}

# Headers an error page Django made keeps when the API answers it as JSON.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location", "Connection")


def error(status: int, detail: Any, *, api: bool = True) -> HttpResponse:
    """{"detail": detail} under /api/, the sentence as plain text elsewhere; Retry-After on 503."""
    if api:
        response: HttpResponse = JsonResponse({"detail": detail}, status=status)
    else:
        response = HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def unauthenticated() -> HttpResponse:
    response = error(401, UNAUTHENTICATED)
    response["WWW-Authenticate"] = "Bearer"
    return response


def too_large(limit: int, *, api: bool) -> HttpResponse:
    """413 before the body is read; the connection closes (the rest of the body is not read)."""
    response = error(413, f"The request body is over {limit} bytes.", api=api)
    response["Connection"] = "close"
    return response


def unavailable_reason(exc: BaseException) -> str:
    """An unavailable database is answered 503: counted by cause; the reason to tell the client."""
    cause = unavailable_cause(exc)
    UNAVAILABLE.labels(cause).inc()
    return UNAVAILABLE_REASONS[cause]


def database_error(exc: BaseException, *, api: bool = True) -> HttpResponse:
    """The answer for a database failure (API.md's 503, 409 and 500), logged as what it is."""
    failure = classify(exc)
    if failure is Failure.UNAVAILABLE:
        reason = unavailable_reason(exc)
        logger.warning("database unavailable (%s): %s", reason, type(exc.__cause__ or exc).__name__)
        return error(503, f"The database is unavailable: {reason}.", api=api)
    if failure in (Failure.TRANSIENT, Failure.CONFLICT):
        logger.info("database conflict answered with 409: %s (SQLSTATE %s)", type(exc).__name__, sqlstate(exc))
        return error(409, CONFLICT, api=api)
    logger.error("database fault answered with 500", exc_info=exc)
    return error(500, INTERNAL, api=api)


def health_unavailable(exc: BaseException) -> HttpResponse:
    """/api/health's 503: API.md gives it its own body, {"status": "unavailable", "database": reason}."""
    response = JsonResponse({"status": "unavailable", "database": unavailable_reason(exc)}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def not_ready(body: dict[str, Any]) -> HttpResponse:
    """/api/health/ready's 503: API.md gives it its own body, the readiness figures."""
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def as_api_error(response: HttpResponseBase, request: HttpRequest | None) -> HttpResponseBase:
    """An error page Django or a middleware made under /api/, as {"detail": ...} (the API never answers HTML)."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code == 404:
        detail = NOT_FOUND
    elif response.status_code == 405 and request is not None:
        detail = f"Method {request.method} is not allowed here."
    elif response.status_code == 500:
        detail = INTERNAL
    else:
        detail = f"{response.reason_phrase}."
    answer = error(response.status_code, detail)
    for header in KEPT_HEADERS:
        if header in response:
            answer[header] = response[header]
    response.close()
    return answer

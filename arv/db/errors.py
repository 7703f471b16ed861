"""What a client is told when the database, not its input, is the problem."""

from __future__ import annotations

import logging

from django.db import DatabaseError, IntegrityError
from django.http import JsonResponse

from arv.db.workers import PoolClosed, PoolTimeout

logger = logging.getLogger("arv.db")

# Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5

UNAVAILABLE_ERRORS = (DatabaseError, PoolTimeout, PoolClosed)


def database_unavailable_response(reason: str) -> JsonResponse:
    response = JsonResponse({"detail": f"The database is unavailable: {reason}."}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def describe_database_error(exc: BaseException) -> str:
    """A short, credential-free reason (never the driver's message: it may echo the DSN)."""
    if isinstance(exc, PoolTimeout):
        return "all connections are busy"
    if isinstance(exc, PoolClosed):
        return "the server is shutting down"
    cause = exc.__cause__ or exc
    if type(cause).__name__ == "QueryCanceled":
        return "the query took too long"
    return "it could not be reached"


def database_error_response(exc: BaseException) -> JsonResponse:
    """409 for a constraint the database enforced, 503 with Retry-After for everything else."""
    if isinstance(exc, IntegrityError):
        return JsonResponse({"detail": "Conflict with existing data."}, status=409)
    logger.warning("database error answered with 503: %s", type(exc.__cause__ or exc).__name__)
    return database_unavailable_response(describe_database_error(exc))

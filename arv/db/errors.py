"""What a database failure means, and what a client is told about it.

One classification serves the whole pipeline (arv.pipeline), the API's error
handlers (arv.api) and the health check:

    UNAVAILABLE  the database cannot be reached, the server is shutting down or no
                 longer accepts writes (a failover: arv.db.failover), no worker became
                 free in time, or a statement outran DB_STATEMENT_TIMEOUT
                                                 -> 503 with Retry-After
    TRANSIENT    deadlock or serialization failure: the same unit of work may
                 succeed if run again            -> retried once where safe, else 409
    CONFLICT     a constraint the database enforced (unique, protected foreign key) -> 409
    FAULT        anything else (a column a migration renamed, a bug)
                 -> 500, with the full traceback in the log
"""

from __future__ import annotations

import enum
import logging

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

from arv.db.failover import READ_ONLY_SQLSTATE
from arv.db.workers import PoolClosed, PoolTimeout
from arv.metrics.series import UNAVAILABLE

logger = logging.getLogger("arv.db")

# Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5

# Exceptions that may stand for "the database, not the request, is the problem".
DATABASE_ERRORS = (DatabaseError, PoolTimeout, PoolClosed)

# SQLSTATEs (PostgreSQL's error codes): what is worth running again, what means "gone".
TRANSIENT_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
# Class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now),
# 53300 (too many connections), 57014 (query_canceled: DB_STATEMENT_TIMEOUT ran out; the
# database did not answer in time, which a client may retry, rather than a fault).
# 25006 (read_only_sql_transaction): the server is a standby now, or fenced, during a failover.
UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300", "57014", READ_ONLY_SQLSTATE}


class Failure(enum.Enum):
    UNAVAILABLE = "unavailable"
    TRANSIENT = "transient"
    CONFLICT = "conflict"
    FAULT = "fault"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of the driver error behind a Django DatabaseError, if it has one."""
    return getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, (PoolTimeout, PoolClosed)):
        return Failure.UNAVAILABLE
    state = sqlstate(exc) or ""
    if state in TRANSIENT_SQLSTATES:
        return Failure.TRANSIENT
    if isinstance(exc, IntegrityError):
        return Failure.CONFLICT
    if state.startswith("08") or state in UNAVAILABLE_SQLSTATES:
        return Failure.UNAVAILABLE
    if isinstance(exc, (OperationalError, InterfaceError)) and not state:
        # No SQLSTATE: the driver lost or never had the connection (refused, closed, timed out).
        return Failure.UNAVAILABLE
    if "database is locked" in str(exc):  # SQLite's busy writer lock outlasted its timeout
        return Failure.TRANSIENT
    return Failure.FAULT


# Why the database is unavailable: the metrics' cause label, and what a client is told.
UNAVAILABLE_CAUSES = {
    "no_primary": "no server accepts writes now (a failover)",
    "pool_timeout": "all connections are busy",
    "shutting_down": "the server is shutting down",
    "statement_timeout": "the query took too long",
    "unreachable": "it could not be reached",
}


def unavailable_cause(exc: BaseException) -> str:
    if isinstance(exc, PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, PoolClosed):
        return "shutting_down"
    if sqlstate(exc) == "57014":
        return "statement_timeout"
    if sqlstate(exc) == READ_ONLY_SQLSTATE or "read-only" in str(exc):  # libpq: "session is read-only"
        return "no_primary"
    return "unreachable"


def unavailable(exc: BaseException) -> str:
    """An unavailable database is answered 503: counted by cause; the reason to tell the client
    (short and credential-free: never the driver's message, which may echo the DSN)."""
    cause = unavailable_cause(exc)
    UNAVAILABLE.labels(cause).inc()
    return UNAVAILABLE_CAUSES[cause]


def database_error_response(exc: BaseException, *, as_json: bool = True) -> HttpResponse:
    """The answer for a database failure (API.md's 503, 409 and 500), logged as what it is:
    {"detail": ...} for the API, the same sentence as plain text for the admin."""
    failure = classify(exc)
    if failure is Failure.UNAVAILABLE:
        reason = unavailable(exc)
        logger.warning("database unavailable (%s): %s", reason, type(exc.__cause__ or exc).__name__)
        status, detail = 503, f"The database is unavailable: {reason}."
    elif failure in (Failure.TRANSIENT, Failure.CONFLICT):
        logger.info("database conflict answered with 409: %s (SQLSTATE %s)", type(exc).__name__, sqlstate(exc))
        status, detail = 409, "Conflict with existing data or a concurrent request; try again."
    else:
        logger.error("database fault answered with 500", exc_info=exc)
        status, detail = 500, "Internal server error."
    if as_json:
        response: HttpResponse = JsonResponse({"detail": detail}, status=status)
    else:
        response = HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response

"""What a database failure means (the answer to it is built in arv.web.error_answers).

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

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError

from arv.db.failover import READ_ONLY_SQLSTATE, sqlstate
from arv.db.workers import PoolClosed, PoolTimeout

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


def unavailable_cause(exc: BaseException) -> str:
    """Why an UNAVAILABLE failure happened: pool_timeout, shutting_down, statement_timeout, no_primary, unreachable."""
    if isinstance(exc, PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, PoolClosed):
        return "shutting_down"
    if sqlstate(exc) == "57014":
        return "statement_timeout"
    if sqlstate(exc) == READ_ONLY_SQLSTATE or "read-only" in str(exc):  # libpq: "session is read-only"
        return "no_primary"
    return "unreachable"

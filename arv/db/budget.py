"""Start-up check (run on a database worker by arv.pipeline): do all server processes' connections fit in the database's max_connections?"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger("arv.db")


def server_processes() -> int:
    """Processes serving ARV on this database: uvicorn's --workers reads WEB_CONCURRENCY too."""
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY", "1")))
    except ValueError:
        return 1


def connection_budget() -> tuple[int, int] | None:
    """(connections ARV may open, connections the server allows non-superusers), PostgreSQL only."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        )
        (available,) = cursor.fetchone()
    return server_processes() * settings.DATABASE_POOL.max_connections, available


def warn_if_budget_too_large() -> None:
    try:
        budget = connection_budget()
    except DatabaseError as exc:
        logger.warning("could not check the connection budget (database unreachable: %s)", type(exc).__name__)
        return
    if budget is None:
        return
    needed, available = budget
    if needed > available:
        logger.warning(
            "connection budget does not fit: %d processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW = %d) = %d > %d "
            "connections the database allows; lower DB_POOL_SIZE/DB_MAX_OVERFLOW or the number of workers",
            server_processes(),
            settings.DATABASE_POOL.max_connections,
            needed,
            available,
        )

"""django-axes' database handler, with the attempts for one username evaluated one at a time.

Each login reads the committed failure count before its password is hashed; without this,
a burst of guesses sent together would all read the same count and all be evaluated (the
limit counts failures, and none has been recorded yet). A transaction-scoped advisory lock
on the username, taken before that read, makes the next attempt wait until the one before
it has recorded its failure (its request's unit of work commits: a wrong password is a 200
form, the failure that locks is kept by arv.auth.middleware). Only an attempt's hashing is
serialized, with its worker held meanwhile; once the pair is locked out, attempts are
refused before hashing, so the wait stays short.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from django.db import connection
from django.http import HttpRequest

# The advisory lock's first key: ARV's login attempts (the second is the username's hash).
LOGIN_LOCK_CLASS = 0x4152_5601


def serialize_attempts_for(username: str) -> None:
    """Wait for any other attempt for `username` to end its transaction (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return  # SQLite serializes every write transaction anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOGIN_LOCK_CLASS, username])


class SerializedAxesHandler(AxesDatabaseHandler):
    def is_allowed(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        serialize_attempts_for(get_client_username(request, credentials) or "")
        return super().is_allowed(request, credentials)

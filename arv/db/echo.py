"""DB_ECHO's SQL log (logger "django.db.backends"), with storage credentials and session data kept out of it."""

from __future__ import annotations

import logging
import re

from django.db.backends.signals import connection_created

REDACTED = "<redacted>"

# Columns whose values never reach the log: storage credentials, and django_session's data
# (signed, not encrypted: a login, a CSRF secret).
SECRET_COLUMNS = ("credentials", "session_data")

# SQL string literals as psycopg writes them into a logged statement: E'...' (backslash
# escapes) or '...' (quotes doubled).
_LITERAL = re.compile(r"\bE'(?:[^'\\]|''|\\.)*'|'(?:[^']|'')*'")


class RedactCredentials(logging.Filter):
    """Django logs each statement with its values inlined and its params: for any statement
    that mentions a secret column (or whose text is unknown), both are redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        sql = getattr(record, "sql", "")
        if not hasattr(record, "params") or (sql is not None and not any(column in sql for column in SECRET_COLUMNS)):
            return True
        sql = _LITERAL.sub(f"'{REDACTED}'", sql or "")
        record.sql, record.params = sql, REDACTED
        if isinstance(record.args, tuple) and len(record.args) == 4:  # (duration, sql, params, alias)
            record.args = (record.args[0], sql, REDACTED, record.args[3])
        return True


def log_every_statement(sender, connection, **kwargs) -> None:
    """connection_created receiver for DB_ECHO: Django logs SQL to "django.db.backends" only
    on "debug cursors", which it uses when DEBUG is on; force them on for each new connection."""
    connection.force_debug_cursor = True


def install(*, echo: bool) -> None:
    # Storage credentials and session data never reach the SQL log (DB_ECHO, or DEBUG with SQL logging on).
    logging.getLogger("django.db.backends").addFilter(RedactCredentials())
    if echo:
        connection_created.connect(log_every_statement, dispatch_uid="arv.db.echo")

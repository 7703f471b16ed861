"""DB_ECHO's SQL log (logger "django.db.backends"), with storage credentials kept out of it."""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted>"

# SQL string literals as psycopg writes them into a logged statement: E'...' (backslash
# escapes) or '...' (quotes doubled).
_LITERAL = re.compile(r"\bE'(?:[^'\\]|''|\\.)*'|'(?:[^']|'')*'")


class RedactCredentials(logging.Filter):
    """Django logs each statement with its values inlined and its params: for any statement
    that mentions a credentials column (or whose text is unknown), both are redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        sql = getattr(record, "sql", "")
        if not hasattr(record, "params") or (sql is not None and "credentials" not in sql):
            return True
        sql = _LITERAL.sub(f"'{REDACTED}'", sql or "")
        record.sql, record.params = sql, REDACTED
        if isinstance(record.args, tuple) and len(record.args) == 4:  # (duration, sql, params, alias)
            record.args = (record.args[0], sql, REDACTED, record.args[3])
        return True


def install() -> None:
    logging.getLogger("django.db.backends").addFilter(RedactCredentials())

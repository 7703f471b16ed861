"""Traceable logs: every line written while serving a request carries its request id.

The pipeline (arv.pipeline) takes the id from the client's or the proxy's `X-Request-ID`
(if it looks like an id), else makes one, returns it in the response's `X-Request-ID`
and keeps it in a context variable for the request's task. The database workers run
each job in a copy of the caller's context (arv.db.workers), so lines written there (the
SQL log of DB_ECHO, a service's own) carry the id too. RequestIdFilter, on the handler,
puts it on every record; JsonFormatter writes one JSON object per line (ARV_LOG_FORMAT=json).

One record is one line: what a client sent (a path, a header, a username) cannot forge
another. TextFormatter escapes control characters (a newline, a NUL, an ANSI escape) in the
line as \\xNN; the JSON lines escape them as JSON does. A traceback keeps its lines.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("arv_request_id", default="-")

# What a proxy's id looks like (a UUID, nginx's $request_id, a trace id): short, no spaces,
# nothing that could forge a log line or a header. Anything else is replaced.
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,128}")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's id: its X-Request-ID header if acceptable, else a new one (32 hex digits)."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _ACCEPTED_ID.fullmatch(text):
                return text
            break
    return secrets.token_hex(16)  # as random as uuid4().hex, a third of its cost (py-spy, bench/)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request). On the handler, so it sees
    the records of every logger (Django's, the SQL log, uvicorn's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """text with every control character written as an escape: one line, nothing hidden."""
    return _CONTROL.sub(_escaped, text)


class TextFormatter(logging.Formatter):
    """The text format, one record a line (a traceback after it keeps its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 -- logging's name
        return escape_controls(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, fixed keys. Twenty lines of our own rather than a library:
    the schema is this one and the standard library's json writes it."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


LOG_FORMATS = {
    "text": {
        "()": "arv.logs.TextFormatter",
        "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
    },
    "json": {"()": "arv.logs.JsonFormatter"},
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def logging_config(*, log_format: str, level: str, sql_echo: bool, access_log: bool) -> dict:
    """settings.LOGGING: one console handler (stderr) for ARV, Django and uvicorn alike.

    level is ARV's own loggers' ("arv", "arv.access", ...); Django and libraries log
    warnings and above, the SQL log everything with DB_ECHO. uvicorn's loggers are sent
    through the same handler, so with json every line a server process writes is JSON.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "arv.logs.RequestIdFilter"}},
        "formatters": {"arv": LOG_FORMATS[log_format]},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "arv", "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "arv": {"level": level},
            # One line per request (method, path, status, duration, request id): ARV_ACCESS_LOG.
            "arv.access": {"level": "INFO" if access_log else "WARNING"},
            # DB_ECHO: arv.db.echo turns on Django's SQL logging on every connection.
            "django.db.backends": {"level": "DEBUG" if sql_echo else "INFO"},
            # Their levels stay uvicorn's (--log-level); --no-access-log: see configure().
            "uvicorn": {"handlers": ["console"], "propagate": False},
            "uvicorn.access": {"handlers": ["console"], "propagate": False},
        },
    }


def configure(config: dict) -> None:
    """settings.LOGGING_CONFIG: Django's dictConfig, keeping uvicorn's access log off if
    uvicorn was told so (--no-access-log leaves "uvicorn.access" without handlers and not
    propagating; the configuration above would otherwise give it the console handler back)."""
    access = logging.getLogger("uvicorn.access")
    access_log_off = not access.handlers and not access.propagate
    logging.config.dictConfig(config)
    if access_log_off:
        access.handlers, access.propagate = [], False

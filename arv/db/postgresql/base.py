"""Django's PostgreSQL backend, with a health check that also asks "is this still the primary?".

ENGINE "arv.db.postgresql" (arv.db.config sets it): everything is Django's
`django.db.backends.postgresql` except the health check and the parsing of timestamps
(psycopg's C loader: UtcTimestampLoader, below). is_usable(), which Django runs for
CONN_HEALTH_CHECKS before a reused connection's first query and after a query error.
Django's check is `SELECT 1`: it passes on a server that is alive but no longer
accepts writes (a standby, or a primary fenced with default_transaction_read_only).
A connection that asked libpq for a writable server (target_session_attrs=read-write or
primary) must also still reach one, else it is closed and the next use reconnects, and
libpq finds the server that now accepts writes.

The role check costs no round trip: PostgreSQL 14+ reports `in_hot_standby` and
`default_transaction_read_only` to the client whenever they change (GUC_REPORT), and
the ping's answer carries any change; reading them is ~2 microseconds, against ~40-80
for a second query such as `SELECT pg_is_in_recovery()` (measured on loopback here).
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

from arv.db.failover import connection_lost, requires_primary, server_accepts_writes

# psycopg's own timestamptz loader: its C implementation where psycopg has one (psycopg[binary]).
_PSYCOPG_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)


class UtcTimestampLoader(Loader):
    """A timestamptz as Django's loader gives it (aware, in UTC), parsed by psycopg's own loader.

    Django registers a subclass of psycopg's pure-Python loader (to set the time zone), so every
    timestamp was parsed in Python: ~4 us a value, and a list page reads 40. psycopg's C loader
    cannot be subclassed; this one hands it each value instead (a query of 20 rows of two
    timestamps: 93-106 against 409-437 us, round trip included, measured side by side)."""

    timezone = datetime.UTC  # Django's create_cursor() compares it with the connection's

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._parse = _PSYCOPG_TIMESTAMPTZ_LOADER(oid, context).load

    def load(self, data: Any) -> datetime.datetime:
        # In the session's time zone, which Django sets to UTC (psycopg then gives datetime.UTC);
        # else Django's own relabelling. replace() alone costs ~1.6 us, more than the parsing.
        value = self._parse(data)
        return value if value.tzinfo is datetime.UTC else value.replace(tzinfo=datetime.UTC)


@functools.cache
def _with_utc_timestamps(django_adapters: AdaptersMap) -> AdaptersMap:
    adapters = AdaptersMap(django_adapters)
    adapters.register_loader("timestamptz", UtcTimestampLoader)
    return adapters


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if self.timezone is datetime.UTC:  # USE_TZ, and no TIME_ZONE of the database's own
            params["context"] = _with_utc_timestamps(params["context"])
        return params

    def is_usable(self) -> bool:
        usable = super().is_usable() and (
            not requires_primary(self.settings_dict) or server_accepts_writes(self.connection)
        )
        if not usable and self.connection is not None:
            connection_lost(self)  # Django closes it next: noted for readiness and the failover line
        return usable

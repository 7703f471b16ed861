"""Django's PostgreSQL backend, with a health check that also asks "is this still the primary?".

ENGINE "arv.db.postgresql" (arv.db.config sets it): everything is Django's
`django.db.backends.postgresql` except is_usable(), which Django runs for
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

from django.db.backends.postgresql import base

from arv.db.failover import connection_lost, requires_primary, server_accepts_writes


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        usable = super().is_usable() and (
            not requires_primary(self.settings_dict) or server_accepts_writes(self.connection)
        )
        if not usable and self.connection is not None:
            connection_lost(self)  # Django closes it next: noted for readiness and the failover line
        return usable

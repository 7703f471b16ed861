"""`manage.py dbstatus [--json]`: the configured bound, what the database sees of ARV's
connections, and (metrics on) every running server process's pool.

When the database cannot be reached: a one-line reason and exit status 1, in both modes
(with --json the document is printed first, "reachable": false).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, connections

from arv.db.replicas import REPLICA_STATE_SQL
from arv.metrics.directory import operators_dir


class Command(BaseCommand):
    help = "Show the connection bound, ARV's connections as the database sees them, and each server's pool."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON document, for scripts")

    def handle(self, *args, as_json: bool = False, **options) -> None:
        status = configured()
        try:
            status["database"] = database_status()
        except DatabaseError as exc:
            status["database"] = {"reachable": False, "reason": unreachable_reason(exc)}
        if settings.DATABASE_REPLICAS.enabled:
            status["replicas"] = {alias: replica_status(alias) for alias in settings.DATABASE_REPLICAS.aliases}
        status["servers"] = servers_status()
        self.stdout.write(json.dumps(status, indent=2) if as_json else as_text(status))
        if not status["database"]["reachable"]:
            raise CommandError(f"the database cannot be reached: {status['database']['reason']}")


def configured() -> dict[str, Any]:
    pool = settings.DATABASE_POOL
    return {
        "vendor": connection.vendor,
        "bound_per_process": pool.max_connections,
        "databases": list(settings.DATABASES),  # each with its own pool of that bound
        "pool_size": pool.size,
        "max_overflow": pool.max_overflow,
        "pool_timeout": pool.timeout,
        "connect_timeout": pool.connect_timeout,
        "conn_max_age": pool.conn_max_age,
        "health_checks": pool.health_checks,
    }


def replica_status(alias: str) -> dict[str, Any]:
    """A read replica's connections from ARV, whether it is a standby, and how far behind it replays."""
    try:
        status = database_status(alias)
        with connections[alias].cursor() as cursor:
            cursor.execute(REPLICA_STATE_SQL)
            in_recovery, replay, lag = cursor.fetchone()
    except DatabaseError as exc:
        return {"reachable": False, "reason": unreachable_reason(exc)}
    return {**status, "in_recovery": in_recovery, "replay_position": replay, "replay_lag_seconds": lag}


def database_status(alias: str = "default") -> dict[str, Any]:
    """Connections of ARV (application_name) as PostgreSQL sees them; just "reachable" elsewhere."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT 1")
            return {"reachable": True}
        cursor.execute(
            "SELECT state, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid() "
            "GROUP BY state ORDER BY state",
            [connection.settings_dict["OPTIONS"].get("application_name", "arv")],
        )
        states = dict(cursor.fetchall())
        cursor.execute("SHOW max_connections")
        (max_connections,) = cursor.fetchone()
    return {
        "reachable": True,
        "connections": sum(states.values()),
        "active": states.get("active", 0),
        "idle": states.get("idle", 0),
        "idle_in_transaction": states.get("idle in transaction", 0),
        "max_connections": int(max_connections),
    }


def unreachable_reason(exc: DatabaseError) -> str:
    """The driver's first line (libpq names the host and port, never the password)."""
    lines = str(exc.__cause__ or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else 'no detail'}"


def servers_status() -> list[dict[str, Any]] | None:
    """Each running server's processes' pools, from their metrics files; None when metrics are off."""
    if not (settings.METRICS_TOKEN or operators_dir()):
        return None
    from arv.metrics.pools import server_pools  # prometheus_client, only when asked for

    return server_pools()


def as_text(status: dict[str, Any]) -> str:
    lines = [
        f"vendor: {status['vendor']}",
        f"bound per server process: {status['bound_per_process']} "
        f"(DB_POOL_SIZE={status['pool_size']} + DB_MAX_OVERFLOW={status['max_overflow']})"
        + (f" per database ({', '.join(status['databases'])})" if len(status["databases"]) > 1 else ""),
        f"wait for a connection: {status['pool_timeout']:g}s; connect timeout: {status['connect_timeout']}s; "
        f"max age: {status['conn_max_age']}s; health checks: {'on' if status['health_checks'] else 'off'}",
    ]
    database = status["database"]
    if not database["reachable"]:
        lines.append(f"database: cannot be reached ({database['reason']})")
    elif "connections" in database:
        lines += [
            f"connections open (all ARV processes): {database['connections']}",
            f"  in use (active): {database['active']}",
            f"  idle: {database['idle']}",
            f"  idle in transaction: {database['idle_in_transaction']}",
            f"database max_connections: {database['max_connections']}",
        ]
    else:
        lines.append("per-connection figures need PostgreSQL")
    for alias, replica in status.get("replicas", {}).items():
        if not replica["reachable"]:
            lines.append(f"replica {alias}: cannot be reached ({replica['reason']})")
            continue
        role = "standby" if replica["in_recovery"] else "NOT a standby (not in recovery): reads skip it"
        lag = replica["replay_lag_seconds"]
        lines.append(
            f"replica {alias}: {role}, replayed to {replica['replay_position']}, lag "
            f"{'unknown' if lag is None else f'{lag:.1f}s'}; {replica['connections']} ARV connections "
            f"(max_connections {replica['max_connections']})"
        )
    servers = status["servers"]
    if servers is None:
        lines.append("server pools: metrics are off (set ARV_METRICS_TOKEN to see each server process's pool)")
    elif not servers:
        lines.append("server pools: no server with metrics is running")
    for server in servers or ():
        lines.append(f"server (metrics in {server['metrics_dir']}):")
        for process in server["processes"]:
            for database, pool in sorted(process.get("pools", {"default": process}).items()):
                lines.append(
                    f"  process {process['pid']} ({database}): {pool.get('in_use', 0)} in use of "
                    f"{pool.get('workers', 0)} workers (bound {pool.get('bound', 0)}), "
                    f"{pool.get('waiting', 0)} requests waiting"
                )
        lines.append(
            f"  since it started: {server['pool_timeouts']} pool timeouts, {server['reconnects']} reconnects, "
            f"{server['connections_opened']} connections opened"
        )
    return "\n".join(lines)

"""The series ARV records (prometheus_client), and the cheap calls that record them.

Per request the pipeline adds to four series (a counter and three histograms: its
latency, and from its unit of work the wait for a worker and the time on it); in
multiprocess mode each addition is a write to a memory-mapped file, a microsecond or
two. The pool's gauges and counters cost requests nothing: the pool counts in its own
bookkeeping (arv.db.workers.PoolStatus; arv.db imports no metrics) and sample_pool
copies that into the series once a second and just before a scrape.

Every series is per process; the scrape adds them up (arv.metrics.directory). The pool
gauges are "liveall": one series per running process (label pid), because a pool is a
process's, and so that `manage.py dbstatus` can show each; gone when the process stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from arv.db.failover import PrimaryWatch
    from arv.db.transaction import UnitOfWork
    from arv.db.workers import PoolStatus

# Seconds; a request that took longer than the last bound is counted in +Inf only.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Per database (label database: default, replica_1, ...): each has its own pool.
POOL_BOUND = Gauge(
    "arv_db_pool_bound",
    "Most database connections this process may hold: DB_POOL_SIZE + DB_MAX_OVERFLOW",
    ["database"],
    multiprocess_mode="liveall",
)
POOL_WORKERS = Gauge(
    "arv_db_pool_workers",
    "Database workers (each one connection) this process has now",
    ["database"],
    multiprocess_mode="liveall",
)
POOL_IN_USE = Gauge(
    "arv_db_pool_in_use", "Database workers leased by a request now", ["database"], multiprocess_mode="liveall"
)
POOL_WAITING = Gauge(
    "arv_db_pool_waiting", "Requests waiting for a database worker now", ["database"], multiprocess_mode="liveall"
)
UNITS = Counter("arv_db_units", "Requests' units of work served, by database (the primary or a replica)", ["database"])
REPLICA_LAG = Gauge(
    "arv_db_replica_lag_seconds",
    "How far behind the primary each replica's replay is (its monitor's last look)",
    ["database"],
    multiprocess_mode="liveall",
)

# Per database (label database: a DATABASES alias), per process like the pool gauges.
DATABASE_ROLE = Gauge(
    "arv_db_role",
    "1 for the role of the server each database's connections reach now: primary, or none (no server "
    "accepting writes reached); a replica: standby (reads use it), or skipped (lagging, down, not a standby)",
    ["database", "role"],
    multiprocess_mode="liveall",
)
POOL_READY_CONNECTIONS = Gauge(
    "arv_db_pool_ready_connections",
    "Connections of each database's pool that reach a server of its role (readiness wants DB_POOL_SIZE)",
    ["database"],
    multiprocess_mode="liveall",
)
FAILOVERS = Counter("arv_db_failovers", "Times each database's connections moved to another primary", ["database"])
DATABASE_ROLES = ("primary", "none", "standby", "skipped")

POOL_TIMEOUTS = Counter("arv_db_pool_timeouts", "Requests that got no database worker within DB_POOL_TIMEOUT")
CONNECTIONS_OPENED = Counter("arv_db_connections_opened", "Database connections opened by the workers")
RECONNECTS = Counter(
    "arv_db_reconnects",
    "Connections replaced because they were found broken or no longer on the primary, by the health check "
    "(DB_HEALTH_CHECKS) or by a request's query",
)
UNAVAILABLE = Counter(
    "arv_http_unavailable_responses",
    "503 answers for a database failure, by cause (arv.db.errors.unavailable_cause)",
    ["cause"],
)
REQUESTS = Counter(
    "arv_http_requests",
    "HTTP requests answered, by method, route (the URL pattern) and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "arv_http_request_duration_seconds",
    "Time from a request's arrival to its answer sent, by route",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
WORKER_WAIT_SECONDS = Histogram(
    "arv_db_worker_wait_seconds", "Time a request waited to lease a database worker", buckets=WAIT_BUCKETS
)
DATABASE_SECONDS = Histogram(
    "arv_db_request_seconds",
    "Time a request's database work ran on its worker (all its trips)",
    buckets=LATENCY_BUCKETS,
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The labelled children by (method, route, status): a dict lookup instead of labels()'
# lock and conversions on every request. Bounded: routes are URL patterns.
_request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method if method in METHODS else "other", route, status)
    series = _request_series.get(key)
    if series is None:
        series = _request_series[key] = (REQUESTS.labels(*key[:2], str(status)), REQUEST_SECONDS.labels(route))
    counter, histogram = series
    counter.inc()
    histogram.observe(seconds)


def observe_unit(unit: UnitOfWork) -> None:
    """A request's unit of work is done: its waits for a worker and its time on one."""
    for seconds in unit.lease_waits:
        WORKER_WAIT_SECONDS.observe(seconds)
    if unit.lease_waits:
        DATABASE_SECONDS.observe(unit.database_seconds)


# The pool's counts -> the counter that adds them up (all databases' pools together), and,
# per database and count, what was already added.
POOL_COUNTERS = {"timeouts": POOL_TIMEOUTS, "connections_opened": CONNECTIONS_OPENED, "reconnects": RECONNECTS}
_counted: dict[tuple[str, str], int] = {}


def sample_pool(status: PoolStatus) -> None:
    """One database's pool (the primary's or a replica's): its figures as of now into the gauges,
    what it counted since the last sample into the counters."""
    database = status.database
    POOL_BOUND.labels(database).set(status.max_connections)
    POOL_WORKERS.labels(database).set(status.workers)
    POOL_IN_USE.labels(database).set(status.in_use)
    POOL_WAITING.labels(database).set(status.waiting)
    counters = {**POOL_COUNTERS, "units": UNITS.labels(database)}
    for name, counter in counters.items():
        count, counted = getattr(status, name), _counted.get((database, name), 0)
        before = counted if count >= counted else 0  # a new pool counts from 0
        if count > before:
            counter.inc(count - before)
        _counted[database, name] = count


def sample_role(database: str, role: str) -> None:
    for name in DATABASE_ROLES:
        DATABASE_ROLE.labels(database, name).set(1 if name == role else 0)


def sample_replica(database: str, in_use: bool, lag: float | None) -> None:
    """A read replica: standby (reads use it) or skipped, and its replay lag (arv.db.replicas)."""
    sample_role(database, "standby" if in_use else "skipped")
    if lag is not None:
        REPLICA_LAG.labels(database).set(lag)


# Failovers already counted, per database (the watch keeps the total; a counter only goes up).
_failovers_counted: dict[str, int] = {}


def sample_database(alias: str, ready_connections: int, watch: PrimaryWatch) -> None:
    """One database's role, its pool's ready connections and its failovers (arv.db.failover)."""
    sample_role(alias, "primary" if ready_connections and watch.refused_since is None else "none")
    POOL_READY_CONNECTIONS.labels(alias).set(ready_connections)
    new = watch.failovers - _failovers_counted.get(alias, 0)
    if new > 0:
        FAILOVERS.labels(alias).inc(new)
        _failovers_counted[alias] = watch.failovers

"""GET /metrics: the Prometheus exposition of every server process's series.

Off unless ARV_METRICS_TOKEN is set; then answered only to `Authorization: Bearer
<token>` (compared in constant time). Any other request for /metrics goes on through
the pipeline like any path ARV does not serve, so it gets the same 404: whether the
endpoint exists does not leak. Served by the pipeline before any unit of work: a scrape
needs no database worker, and still answers when every worker is busy.
"""

from __future__ import annotations

import asyncio
import hmac
import os

from django.db import DEFAULT_DB_ALIAS
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from arv.db import replicas
from arv.db.failover import primary_watch
from arv.db.workers import all_pools
from arv.metrics.directory import ENV, dead_process_ids
from arv.metrics.series import sample_database, sample_pool, sample_replica

PATH = "/metrics"
# How often each process copies its pool's figures into its gauges.
SAMPLE_SECONDS = 1.0


def authorized(headers: list[tuple[bytes, bytes]], token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>` (token set)."""
    if not token:
        return False
    for name, value in headers:
        if name == b"authorization":
            scheme, _, given = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token.encode())
    return False


async def response() -> HttpResponse:
    """The exposition, read off the event loop (the files of every process)."""
    sample_pools()  # this process's pools, as of now
    body = await asyncio.to_thread(render)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def render() -> bytes:
    path = os.environ.get(ENV)
    if not path:  # one process, series in memory (a server in a test's thread)
        return generate_latest(REGISTRY)
    for pid in dead_process_ids(path):  # killed without saying so: its pool is gone
        mark_process_dead(pid, path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    return generate_latest(registry)


async def sample_pool_forever() -> None:
    """The pool gauges, refreshed every SAMPLE_SECONDS (started by the lifespan when metrics are on)."""
    while True:
        sample_pools()
        await asyncio.sleep(SAMPLE_SECONDS)


def sample_pools() -> None:
    """Each database's pool and role: the primary's (arv.db.failover), each replica's (arv.db.replicas)."""
    for pool in all_pools():
        status = pool.status()
        sample_pool(status)
        if pool.alias == DEFAULT_DB_ALIAS:
            sample_database(pool.alias, status.ready_connections, primary_watch(pool.alias))
    if replicas.enabled():
        for state in replicas.monitor.states():
            sample_replica(state.database, bool(state.available), state.lag)


def process_stopped() -> None:
    """This process's pool gauges go with it (lifespan shutdown); its counts stay."""
    if os.environ.get(ENV):
        mark_process_dead(os.getpid(), os.environ[ENV])

"""Ready only when it can serve: the pool's connections opened at start-up, and kept checked.

The pool keeper runs in each server process from the ASGI lifespan (arv.pipeline):

- warm-up: right after start-up it opens the pool's DB_POOL_SIZE connections, each at a
  random moment of its own slot of DB_WARMUP_SECONDS (so that many processes starting
  together do not open all their connections in the same instant), instead of leaving them
  to the first requests;
- every WATCH_SECONDS it checks the connection of the worker idle the longest (the health
  check's ping and role: arv.db.failover.check_connection), so a primary that stopped while
  nobody was asking is noticed within about a second, for one `SELECT 1` a second;
- once connections were lost (a unit or a check found the server gone or read-only), it
  checks one idle worker's connection a second until one reaches a writable server again,
  then all the others and opens any that are missing: the pool serves from the new primary
  without a restart, and reconnects one connection at a time while none can succeed.

`/api/health/ready` (arv.api) asks readiness(): ready when the warm-up is done and the pool
holds DB_POOL_SIZE connections to a server that accepts writes, as last seen. It costs no
worker and no query.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from django.conf import settings

from arv.db.failover import check_connection
from arv.db.workers import DatabaseWorker, DatabaseWorkerPool, PoolClosed, get_pool

logger = logging.getLogger("arv.db")

# How often the keeper checks a connection nobody is using.
WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str  # what a load balancer's operator reads: why not (or "ok")
    connections: int  # connections to a writable server, as last seen
    wanted: int  # DB_POOL_SIZE


class PoolKeeper:
    def __init__(self, warmup_seconds: float) -> None:
        self.warmup_seconds = warmup_seconds
        self.warmed_up = False

    async def run(self) -> None:
        # The pool this server started with: once it is closed (shutdown, or a test closing it)
        # the keeper stops, rather than make and warm a new pool that nobody asked for.
        pool = get_pool()
        await self.warm_up(pool)
        while not pool.closed:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self.tend(pool)
            except PoolClosed:
                return

    async def warm_up(self, pool: DatabaseWorkerPool) -> None:
        size = pool.config.size
        # One slot of the window per connection, a random moment in each: spread, never in step.
        slot = self.warmup_seconds / size
        await asyncio.gather(*(self._open_one(pool, (i + random.random()) * slot) for i in range(size)))
        self.warmed_up = True
        status = pool.status()
        logger.info("database pool warmed up: %d of %d connections ready", status.ready_connections, status.pool_size)

    async def _open_one(self, pool: DatabaseWorkerPool, delay: float) -> None:
        await asyncio.sleep(delay)
        worker = pool.lease_unopened()
        if worker is not None:
            await self.check(pool, worker)

    async def tend(self, pool: DatabaseWorkerPool) -> None:
        status = pool.status()
        first = pool.lease_idle()
        if first is None:
            first = pool.lease_unopened()
        if first is None:
            return  # every worker is serving a request: their units report what they find
        server = await self.check(pool, first)
        if status.ready_connections >= status.pool_size or server is None:
            return
        # A writable server is back (or was never lost by these): check every other idle
        # connection now, and open the ones the pool is missing.
        others: list[DatabaseWorker] = []
        while len(others) < pool.config.max_connections and (worker := pool.lease_idle()) is not None:
            others.append(worker)
        while (worker := pool.lease_unopened()) is not None:
            others.append(worker)
        await asyncio.gather(*(self.check(pool, worker) for worker in others))

    async def check(self, pool: DatabaseWorkerPool, worker: DatabaseWorker) -> str | None:
        try:
            return await worker.call(check_connection)
        finally:
            pool.release(worker)


_keeper: PoolKeeper | None = None


def start_keeper() -> asyncio.Future:
    """The lifespan's start-up: warm the pool up and keep it checked (cancel the task at shutdown)."""
    global _keeper
    _keeper = PoolKeeper(settings.DATABASE_POOL.warmup_seconds)
    return asyncio.ensure_future(_keeper.run())


def readiness() -> Readiness:
    pool = get_pool()
    status = pool.status()
    connections, wanted = status.ready_connections, status.pool_size
    if _keeper is None or not _keeper.warmed_up:
        return Readiness(False, "starting: the pool's connections are being opened", connections, wanted)
    if connections < wanted:
        reason = "no server accepts writes" if connections == 0 else f"{connections} of {wanted} connections open"
        return Readiness(False, reason, connections, wanted)
    return Readiness(True, "ok", connections, wanted)

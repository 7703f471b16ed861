"""arv.db.workers: leased workers take turns, at most DB_RUNNING_JOBS running at once."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import pytest
from django.conf import settings

from arv.db.workers import DatabaseWorkerPool


class Concurrency:
    """Counts the jobs running at the same moment (on the worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def job(self, seconds: float) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(seconds)
        with self._lock:
            self.now -= 1


@pytest.fixture
def make_pool():
    pools = []

    def make(running_jobs: int, size: int = 6) -> DatabaseWorkerPool:
        config = dataclasses.replace(settings.DATABASE_POOL, size=size, max_overflow=0, running_jobs=running_jobs)
        pools.append(DatabaseWorkerPool(config))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


async def _leased_jobs(pool: DatabaseWorkerPool, leases: int, fn, *args) -> None:
    workers = [await pool.acquire() for _ in range(leases)]
    try:
        await asyncio.gather(*(worker.call(fn, *args) for worker in workers))
    finally:
        for worker in workers:
            pool.release(worker)


@pytest.mark.parametrize(("running_jobs", "expected_peak"), [(1, 1), (2, 2), (0, 6)])
def test_at_most_running_jobs_run_at_once(make_pool, running_jobs, expected_peak):
    pool, running = make_pool(running_jobs), Concurrency()
    asyncio.run(_leased_jobs(pool, 6, running.job, 0.02))  # 6 x 0.02 s: within active_wait
    assert running.peak == expected_peak
    assert pool.status().jobs_running == 0 and pool.status().jobs_waiting_turn == 0


def test_a_workers_jobs_keep_their_order_while_they_wait_their_turn(make_pool):
    pool, order = make_pool(running_jobs=1), []

    async def scenario():
        busy, mine = await pool.acquire(), await pool.acquire()
        blocker = busy.call(time.sleep, 0.05)  # holds the only turn
        mine_jobs = [mine.call(order.append, n) for n in range(5)]  # all wait, then run in order
        assert pool.status().jobs_waiting_turn == 5
        await asyncio.gather(blocker, *mine_jobs)
        pool.release(busy)
        pool.release(mine)

    asyncio.run(scenario())
    assert order == [0, 1, 2, 3, 4]


def test_a_job_that_waited_too_long_runs_anyway(make_pool):
    """A job holding the turn while it waits (say, for a row lock) must not stall the one that
    would end that wait (say, the commit of the transaction holding the lock)."""
    pool = make_pool(running_jobs=1)
    pool.active_wait = 0.2
    released = threading.Event()

    async def scenario() -> float:
        waiting, releasing = await pool.acquire(), await pool.acquire()
        stuck = waiting.call(released.wait, 10)  # holds the only turn until released is set
        started = time.monotonic()
        await releasing.call(released.set)
        took = time.monotonic() - started
        assert await stuck is True
        pool.release(waiting)
        pool.release(releasing)
        return took

    took = asyncio.run(scenario())
    assert 0.15 < took < 5


PROBE_LOCK = 2020  # the advisory lock a probe row's commit waits for


@pytest.fixture
def commit_waits_for_lock(django_db_blocker):
    """A table whose rows' COMMIT waits for an advisory lock (a deferred constraint trigger
    takes it at commit time), held by a connection of the test's own until it calls the
    returned unlock(): a commit that waits on the database, as one waiting for its flush to
    disk does."""
    from django.db import connection

    with django_db_blocker.unblock():
        holder = connection.get_new_connection(connection.get_connection_params())
    holder.autocommit = True
    holder.execute(
        "CREATE TABLE turn_probe (id int);"
        "CREATE FUNCTION turn_probe_wait() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN PERFORM pg_advisory_xact_lock({PROBE_LOCK}); RETURN NULL; END $$;"
        "CREATE CONSTRAINT TRIGGER turn_probe_wait AFTER INSERT ON turn_probe"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION turn_probe_wait()"
    )
    holder.execute("SELECT pg_advisory_lock(%s)", [PROBE_LOCK])
    try:
        yield lambda: holder.execute("SELECT pg_advisory_unlock_all()")
    finally:
        holder.execute("SELECT pg_advisory_unlock_all()")
        holder.execute("DROP TABLE turn_probe; DROP FUNCTION turn_probe_wait()")
        holder.close()


def _insert_probe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO turn_probe VALUES (1)")


@pytest.mark.django_db(transaction=True)
def test_a_commit_that_waits_on_the_database_holds_no_turn(make_pool, commit_waits_for_lock):
    """DB_RUNNING_JOBS=1: while one unit's COMMIT waits on the database, another unit's job runs
    (turns are for the GIL; commits are not serialised behind each other)."""
    from arv.db.transaction import UnitOfWork

    pool = make_pool(running_jobs=1)
    pool.active_wait = 60.0  # no job runs out of turn for having waited (the fallback)
    unlock, finished = commit_waits_for_lock, []

    async def scenario() -> None:
        committing = asyncio.ensure_future(UnitOfWork(pool).run(_insert_probe, last=True))
        committing.add_done_callback(lambda _: finished.append("the waiting commit"))
        await asyncio.sleep(0)  # it has the only turn now
        assert pool.status().jobs_running == 1
        other = asyncio.ensure_future(UnitOfWork(pool).run(lambda: finished.append("the other unit's job")))
        # If the waiting commit held its turn, the other job could not run until unlocked.
        await asyncio.wait({other}, timeout=10)
        unlock()
        await asyncio.gather(committing, other)

    asyncio.run(scenario())
    assert finished == ["the other unit's job", "the waiting commit"]
    assert pool.status().jobs_running == 0 and pool.status().jobs_waiting_turn == 0

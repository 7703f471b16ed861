"""Reads on the event loop: a request's reads before its transaction, with no trip to a thread.

`await read(query, **values)` (an async view's or selector's) runs a CompiledQuery
(arv.db.queries) in the current request's unit of work (arv.db.transaction). Where it may, it
runs on the event loop itself, on the unit's leased worker's own PostgreSQL session, through a
psycopg AsyncConnection that wraps that session's libpq connection: the pool's bound is
unchanged (the worker's thread is idle meanwhile: it is leased), and the request pays no thread
hop and none of Django's per-trip connection upkeep. The detail endpoint's whole database work
(the token, the company) is two such reads: its CPU per request fell by half in the spike
(bench/, README "Benchmark").

It may (may_read_on_loop) when:
- the unit's transaction has not begun: these reads run in autocommit. Under READ COMMITTED
  (PostgreSQL's default, and the only level this lane serves) every statement takes its own
  snapshot inside a transaction or out of one, so a read answers the same; a request's writes
  still form one transaction, which its first trip to the worker begins, and reads after that
  run in it, on the worker;
- the unit trusts its connection without a health check (UnitOfWork.trusts_connection: if it
  is dead after all, the request runs once more on a fresh unit, which reads on the worker
  after the health check), and it is open, without an error since its last unit, and younger
  than CONN_MAX_AGE (the worker's next trip closes an old or broken one);
- its SQL is not being logged (DB_ECHO, DEBUG: Django's debug cursor logs it on the worker);
- on a replica, the client's read-after position needs no wait (else the worker checks it);
- a worker has compiled the query before (compiling may need a connection of the thread's own).

Otherwise the same read is a trip to the worker, in the unit's transaction, as any run_db.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus

from arv.db.errors import DATABASE_ERRORS
from arv.db.failover import reaches_writable

if TYPE_CHECKING:
    from arv.db.queries import CompiledQuery
    from arv.db.transaction import UnitOfWork
    from arv.db.workers import DatabaseWorker


async def read(query: CompiledQuery[Any], /, **values: Any) -> Any:
    """The query's rows (a CompiledCount's count) for these values, in the current request's unit
    of work: on the event loop before its transaction began (where it may), else on its worker,
    in the transaction."""
    from arv.db.transaction import current_unit

    return await current_unit().read(query, values)


def may_read_on_loop(unit: UnitOfWork, worker: DatabaseWorker) -> bool:
    """Whether the unit (holding worker, its transaction not begun) may read on the event loop."""
    wrapper = worker.connection
    if wrapper is None or wrapper.vendor != "postgresql" or not unit.trusts_connection(worker):
        return False
    connection = wrapper.connection
    if connection is None or connection.closed or connection.broken or wrapper.errors_occurred:
        return False
    if wrapper.close_at is not None and time.monotonic() >= wrapper.close_at:
        return False  # CONN_MAX_AGE: the worker replaces it
    if wrapper.queries_logged or wrapper.isolation_level != psycopg.IsolationLevel.READ_COMMITTED:
        return False
    if connection.pgconn.transaction_status != TransactionStatus.IDLE:
        return False
    route = unit.route
    return not route.on_replica or route.replayed()


async def execute(unit: UnitOfWork, query: CompiledQuery[Any], values: dict[str, Any]) -> Any:
    """Run query on the unit's leased worker's session, on the event loop (may_read_on_loop held).
    A database error is noted on the unit as a trip's would be (the pipeline decides what it
    means); a connection found lost is never reused."""
    worker = unit.worker
    assert worker is not None
    wrapper = worker.connection
    compiled = query.compiled_for(wrapper.alias)
    if compiled is None:  # compiled once, on the worker (its connection answers what compiling asks)
        compiled = await worker.call(query.compile_for, wrapper.alias)
    started = time.perf_counter()
    try:
        with wrapper.wrap_database_errors:  # psycopg's errors as Django's, as on the worker
            cursor = _loop_connection(worker).cursor()
            await cursor.execute(compiled.sql, compiled.bind(values), prepare=False if compiled.custom_plans else None)
            rows = await cursor.fetchall()
    except DATABASE_ERRORS as exc:
        unit.note_failure(exc, wrapper, worker)
        raise
    except BaseException:
        # Cut off mid-query (cancelled): the session's state is unknown, the worker replaces it.
        wrapper.close_at = 0
        worker.writable_server = None
        raise
    finally:
        unit.database_seconds += time.perf_counter() - started
    return compiled.answer(rows, wrapper)


def after_reads(unit: UnitOfWork, worker: DatabaseWorker) -> None:
    """A unit that only read on the loop is done with worker: what its connection reaches now
    (readiness counts it; a lost one was noted when it was found)."""
    if not unit.connection_lost and worker.connection is not None:
        worker.writable_server = reaches_writable(worker.connection)


def _loop_connection(worker: DatabaseWorker) -> psycopg.AsyncConnection[Any]:
    """The AsyncConnection over the worker's current session (made again when it reconnected)."""
    connection = worker.connection.connection
    wrapped = worker.loop_connection
    if wrapped is None or wrapped.pgconn is not connection.pgconn:
        wrapped = psycopg.AsyncConnection(connection.pgconn)
        # The session's own settings, as Django's connection has them: Django's loaders (time
        # zones, JSON as text), the statements prepared on this session, autocommit.
        wrapped._adapters = connection.adapters
        wrapped._prepared = connection._prepared
        wrapped._autocommit = True
        wrapped._pool = None  # owned by Django's connection, which closes it: no "deleted while open" warning
        client_binding = issubclass(connection.cursor_factory, psycopg.ClientCursor)  # as Django's cursors bind
        wrapped.cursor_factory = psycopg.AsyncClientCursor if client_binding else psycopg.AsyncCursor
        worker.loop_connection = wrapped
    return wrapped

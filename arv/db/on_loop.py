"""Reads on the event loop: a request's reads before its transaction, with no trip to a thread;
and a request's one new row (insert_last).

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

A request whose only write is one new row (arv.web.shaping.finish_insert: a create of the API's)
writes on the loop too, where its reads may and the row is a plain INSERT (may_insert_on_loop):
`BEGIN; INSERT ... RETURNING` in one round trip, the answer shaped, then `COMMIT` (an error, the
shaping's included, rolls it back). Still one transaction a failed request leaves nothing of,
and the same failure handling as a trip's. A create costs no trip to a worker's thread, its
token lookup included: its CPU per request fell by about a third (README "Benchmark").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model, signals
from django.db.models.sql import InsertQuery
from psycopg.pq import TransactionStatus

from arv.db import replicas
from arv.db.errors import DATABASE_ERRORS
from arv.db.failover import reaches_writable

if TYPE_CHECKING:
    from arv.db.queries import CompiledQuery
    from arv.db.transaction import UnitOfWork
    from arv.db.workers import DatabaseWorker

T = TypeVar("T")


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
    """Run query on the unit's leased worker's session, on the event loop (may_read_on_loop held)."""
    worker = unit.worker
    assert worker is not None
    compiled = query.compiled_for(worker.connection.alias)
    if compiled is None:  # compiled once, on the worker (its connection answers what compiling asks)
        compiled = await worker.call(query.compile_for, worker.connection.alias)

    async def fetch(connection: psycopg.AsyncConnection[Any]) -> list[Any]:
        cursor = connection.cursor()
        await cursor.execute(compiled.sql, compiled.bind(values), prepare=False if compiled.custom_plans else None)
        return await cursor.fetchall()

    return compiled.answer(await _on_session(unit, worker, fetch), worker.connection)


def may_insert_on_loop(unit: UnitOfWork, instance: Model) -> bool:
    """Whether insert_last may insert instance on the event loop, where the unit reads there now
    (UnitOfWork.insert_last asks that first): on the primary, and the row is one plain INSERT (no
    parent model's row, no ordering to look up) that nobody listens to (receivers of pre_save or
    post_save are sync code that may query: they get Model.save() on the worker)."""
    meta = instance._meta
    return (
        not unit.route.on_replica
        and not meta.parents
        and not meta.order_with_respect_to
        and not instance._is_pk_set()
        and not signals.pre_save.has_listeners(type(instance))
        and not signals.post_save.has_listeners(type(instance))
    )


async def insert_last(unit: UnitOfWork, instance: Model, shape: Callable[[Model], T]) -> T:
    """A request's last database work, on the event loop (may_insert_on_loop held): instance
    inserted as Model.save(force_insert=True) would (its fields' pre_save, the returned primary
    key), shape(instance), then the commit. BEGIN and the INSERT travel in one round trip,
    COMMIT in a second; an error, the shaping's included, rolls it back."""
    worker = unit.worker
    assert worker is not None
    wrapper = worker.connection
    insert = _InsertStatement(instance, wrapper)

    async def begin_and_insert(connection: psycopg.AsyncConnection[Any]) -> Any:
        # Bound on the client (with the session's adapters) and sent as a simple query: one
        # message, two statements. Not prepared: a row's INSERT is planned in microseconds.
        cursor = psycopg.AsyncClientCursor(connection)
        await cursor.execute("BEGIN; " + insert.sql, insert.params, prepare=False)
        cursor.nextset()
        return await cursor.fetchone()

    unit.finished = True  # whatever happens next, no more database work in this unit
    try:
        insert.saved(instance, await _on_session(unit, worker, begin_and_insert))
        answer = shape(instance)
    except BaseException:
        await _roll_back(worker)
        raise
    unit.commit_started = True  # from here a lost connection leaves the outcome unknown
    await _on_session(unit, worker, _commit)
    if replicas.enabled() and wrapper.alias == DEFAULT_DB_ALIAS:
        unit.read_after = await _position_after_commit(worker) or unit.read_after
    return answer


async def _on_session(
    unit: UnitOfWork, worker: DatabaseWorker, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
) -> T:
    """work(connection) on the worker's session, from the event loop. A database error is noted on
    the unit as a trip's would be (the pipeline decides what it means); a connection found lost
    is never reused."""
    wrapper = worker.connection
    started = time.perf_counter()
    try:
        with wrapper.wrap_database_errors:  # psycopg's errors as Django's, as on the worker
            return await work(_loop_connection(worker))
    except DATABASE_ERRORS as exc:
        unit.note_failure(exc, wrapper, worker)
        raise
    except BaseException:
        _replace_session(worker)  # cut off mid-query (cancelled): the session's state is unknown
        raise
    finally:
        unit.database_seconds += time.perf_counter() - started


async def _commit(connection: psycopg.AsyncConnection[Any]) -> None:
    await connection.execute("COMMIT")


async def _roll_back(worker: DatabaseWorker) -> None:
    """End the transaction insert_last began, if the session is still in it."""
    wrapper = worker.connection
    connection = wrapper.connection
    if wrapper.close_at == 0 or connection.pgconn.transaction_status not in (
        TransactionStatus.INTRANS,
        TransactionStatus.INERROR,
    ):
        return  # not begun, or a session the worker replaces anyway (lost, cut off)
    try:
        await _loop_connection(worker).execute("ROLLBACK")
    except psycopg.Error:
        _replace_session(worker)


async def _position_after_commit(worker: DatabaseWorker) -> int | None:
    """replicas.position_after_commit's, asked from the event loop."""
    try:
        cursor = await _loop_connection(worker).execute(replicas.WAL_INSERT_POSITION)
        (text,) = await cursor.fetchone()
    except psycopg.Error as exc:
        _replace_session(worker)
        replicas.no_position(exc)
        return None
    return replicas.lsn_value(text)


def _replace_session(worker: DatabaseWorker) -> None:
    """The worker's session is in a state nobody knows: its next trip replaces it (as CONN_MAX_AGE
    would), and nothing reads on the loop from it meanwhile (may_read_on_loop)."""
    worker.connection.close_at = 0
    worker.writable_server = None


class _InsertStatement:
    """The INSERT Model.save(force_insert=True) sends for a new row, and what it returns."""

    def __init__(self, instance: Model, wrapper: Any) -> None:
        meta = instance._meta
        fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
        query = InsertQuery(type(instance))
        query.insert_values(fields, [instance])  # each field's pre_save (auto_now ...) runs in as_sql
        compiler = query.get_compiler(connection=wrapper)
        compiler.returning_fields = self.returning_fields = meta.db_returning_fields
        [(self.sql, self.params)] = compiler.as_sql()
        self.converters = compiler.get_converters([f.get_col(meta.db_table) for f in self.returning_fields])
        self.compiler = compiler

    def saved(self, instance: Model, row: tuple[Any, ...]) -> None:
        """instance as Model.save() leaves it: the returned fields set, no longer adding."""
        if self.converters:
            [row] = self.compiler.apply_converters([row], self.converters)
        for value, field in zip(row, self.returning_fields, strict=True):
            setattr(instance, field.attname, value)
        instance._state.adding = False
        instance._state.db = self.compiler.connection.alias


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

"""Query helpers for the hot paths."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet

from arv.db.workers import worker_database

M = TypeVar("M", bound=Model)


def page_of(queryset: QuerySet[M], start: int, stop: int) -> QuerySet[M]:
    """queryset[start:stop], with its select list computed for the page's rows only.

    PostgreSQL computes a row's whole select list (annotations, correlated subqueries,
    joined columns) before OFFSET discards it: page 250 of a list with a subquery
    annotation ran the subquery 5,000 times (bench/). Here the page's keys come from
    the ordering's index alone (an index-only scan) and only those rows are fetched.
    The answer is the same rows in the same order. A DISTINCT queryset is sliced as is
    (its keys subquery would carry the ordering's columns too).
    """
    if queryset.query.distinct:
        return queryset[start:stop]
    keys = queryset.values("pk")[start:stop]
    return queryset.filter(pk__in=keys)


def plan_for_each_search(using: str | None = None) -> None:
    """Have PostgreSQL plan the rest of this transaction's statements for their actual parameters.

    psycopg prepares a statement a connection runs often (prepare_threshold), and after five
    runs PostgreSQL may switch a prepared statement to one generic plan. For a LIKE pattern the
    generic plan guesses 0.5 % of rows match, so "newest first, LIMIT 20" walks the ordering's
    index and filters: at 1,000,000 companies a search for a number that matches a handful of
    rows then read them all, 2 s instead of 3 ms (bench/ --sizes). Only for statements whose
    parameters change their best plan (search terms); the transaction's end resets it.
    """
    connection = connections[using or worker_database()]
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")


class PageOfPaginator(Paginator):
    """Django's Paginator, each page fetched with page_of (for the admin's changelists)."""

    def page(self, number: Any) -> Any:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(page_of(self.object_list, bottom, top), number, self)


def one_or_none(queryset: QuerySet[M]) -> M | None:
    """The row a unique lookup finds, or None.

    Unlike .first(), adds no ORDER BY (the model's default ordering, or the
    primary key): for a unique lookup that is a pointless sort, and compiling it
    is a measurable share of a request's CPU time.
    """
    for row in queryset.order_by()[:1]:
        return row
    return None


class CompiledQuery(Generic[M]):
    """A queryset compiled to SQL once, then run with new parameter values.

    For the queries every request makes (the token, the company of a detail
    request, a page of the company list): compiling a queryset is about two
    thirds of the CPU time such a lookup costs, and a third of a list or search
    request's (bench/, py-spy). build(**placeholders) makes the queryset with a
    stand-in value per parameter; run(**values) executes the same SQL with the
    real values and makes model instances as the ORM would (field converters,
    annotations as attributes). An int parameter may also bound a slice: the
    LIMIT and OFFSET Django writes into the SQL text become placeholders. A str
    parameter is compared as it is: for a pattern, pass it as an expression
    (name__icontains=Value(term)) so the SQL, not Python, escapes and wraps it.
    Only plain model querysets: no select_related, no values(), no prefetching.

        _by_slug = CompiledQuery(lambda slug: Company.objects.filter(slug=slug), slug=str)
        companies = _by_slug.run(slug="acme")
        _page = CompiledQuery(lambda start, size: Company.objects.order_by("pk")[start : start + size],
                              start=int, size=int)
    """

    def __init__(self, build: Callable[..., QuerySet[M]], *, custom_plans: bool = False, **parameters: type) -> None:
        self.build = build
        self.parameters = parameters
        # Planned for its actual values each time, never prepared (plan_for_each_search says why):
        # on the worker the caller asks for that; a read on the event loop asks psycopg not to prepare it.
        self.custom_plans = custom_plans
        self._compiled: dict[str, Any] = {}  # per database alias

    def run(self, using: str | None = None, **values: Any) -> list[M]:
        """The rows for these values, from `using` (default: the database this worker serves)."""
        return self.compile_for(using or worker_database()).run(values)

    def compile_for(self, using: str) -> _Compiled[M]:
        """Its SQL and row handling for that database, compiled on first use (on a worker:
        compiling may ask the connection, such as for the server's version)."""
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        return compiled

    def _compile(self, using: str) -> Any:
        return _Compiled(self, using)

    def compiled_for(self, using: str) -> _Compiled[M] | None:
        """Its SQL for that database, if compiled already."""
        return self._compiled.get(using)


class CompiledCount(CompiledQuery[Any]):
    """queryset.count() compiled once, the same way: run(**values) is the count (an int).

    The SQL is the one Django sends for build(**placeholders).count(), captured on its first
    run (with the stand-in values) on a worker; Company's count() of the whole table included
    (its counter table, companies.models)."""

    def run(self, using: str | None = None, **values: Any) -> int:  # type: ignore[override]
        return self.compile_for(using or worker_database()).run(values)

    def _compile(self, using: str) -> _CompiledCount:
        return _CompiledCount(self, using)


def _stand_ins(query: CompiledQuery[Any]) -> dict[str, Any]:
    return {name: _stand_in(name, kind, n) for n, (name, kind) in enumerate(query.parameters.items())}


def _slots(params: list[Any], stand_ins: dict[str, Any]) -> dict[str, list[int]]:
    """Where each parameter goes in the SQL's parameter list (a value may be used twice)."""
    slots = {
        name: [i for i, p in enumerate(params) if (p.name == name if isinstance(p, _WrittenInt) else p == value)]
        for name, value in stand_ins.items()
    }
    unused = [name for name, found in slots.items() if not found]
    if unused:
        raise ValueError(f"CompiledQuery: the queryset does not use {', '.join(unused)}")
    return slots


class _CompiledStatement:
    """One statement with its parameters' places: what runs on a worker or on the event loop."""

    sql: str
    params: list[Any] | None
    slots: dict[str, list[int]]
    custom_plans: bool
    using: str

    def bind(self, values: dict[str, Any]) -> list[Any] | None:
        """The SQL's parameter list for these values."""
        if self.params is None:
            return None
        params = self.params.copy()
        for name, slots in self.slots.items():
            for i in slots:
                params[i] = values[name]
        return params

    def run(self, values: dict[str, Any]) -> Any:
        connection = connections[self.using]  # this thread's
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.bind(values))
            return self.answer(cursor.fetchall(), connection)

    def answer(self, rows: list[tuple[Any, ...]], connection: Any) -> Any:
        raise NotImplementedError


class _CompiledCount(_CompiledStatement):
    def __init__(self, query: CompiledCount, using: str) -> None:
        stand_ins = _stand_ins(query)
        statements: list[tuple[str, Any]] = []

        def capture(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            statements.append((sql, params))
            return execute(sql, params, many, context)

        with connections[using].execute_wrapper(capture):
            query.build(**stand_ins).count()
        if len(statements) != 1:
            raise ValueError(f"CompiledCount: the count ran {len(statements)} statements, not one")
        self.sql, params = statements[0]
        self.params = None if params is None else list(params)
        self.slots = _slots(self.params or [], stand_ins)
        self.custom_plans = query.custom_plans
        self.using = using

    def answer(self, rows: list[tuple[Any, ...]], connection: Any) -> int:
        return int(rows[0][0])


class _Compiled(_CompiledStatement, Generic[M]):
    def __init__(self, query: CompiledQuery[M], using: str) -> None:
        stand_ins = _stand_ins(query)
        queryset = query.build(**stand_ins)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        written = {value: name for name, value in stand_ins.items() if type(value) is int and value not in params}
        self.sql, params = _bind_written_ints(sql, list(params), written) if written else (sql, list(params))
        self.params = [None if isinstance(p, _WrittenInt) else p for p in params]
        self.slots = _slots(params, stand_ins)
        self.custom_plans = query.custom_plans
        klass_info = compiler.klass_info
        if queryset._iterable_class.__name__ != "ModelIterable" or klass_info.get("related_klass_infos"):
            raise ValueError("CompiledQuery: only plain model querysets (no values(), no select_related)")
        self.model = queryset.model
        self.using = using
        fields = klass_info["select_fields"]
        self.model_columns = slice(fields[0], fields[-1] + 1)
        self.init_list = [column[0].target.attname for column in compiler.select[self.model_columns]]
        self.annotations = list(compiler.annotation_col_map.items())
        self.converters = compiler.get_converters([column[0] for column in compiler.select])

    def answer(self, rows: list[tuple[Any, ...]], connection: Any) -> list[M]:
        """Model instances from the rows, as the ORM makes them (connection: the Django
        connection that ran the query, for the fields' converters)."""
        if self.converters:
            rows = [self._convert(row, connection) for row in rows]
        objects = []
        for row in rows:
            obj = self.model.from_db(self.using, self.init_list, row[self.model_columns])
            for name, position in self.annotations:
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects

    def _convert(self, row: tuple[Any, ...], connection: Any) -> list[Any]:
        # The ORM's field converters (JSON text -> objects, ...), as SQLCompiler.apply_converters
        # applies them, but with the calling thread's connection, not the compiling one's.
        values = list(row)
        for position, (converters, expression) in self.converters.items():
            for convert in converters:
                values[position] = convert(values[position], expression, connection)
        return values


@dataclass(frozen=True)
class _WrittenInt:
    """In a compiled parameter list: the place of an int parameter that Django had written
    into the SQL text."""

    name: str


def _bind_written_ints(sql: str, params: list[Any], written: dict[int, str]) -> tuple[str, list[Any]]:
    """The SQL with each stand-in int Django wrote as a literal (LIMIT, OFFSET) made a
    placeholder, and the parameter list with a _WrittenInt in each new place."""
    literal = "|".join(str(value) for value in written)
    tokens = re.compile(rf"%%|%s|(?<![\w.])({literal})(?![\w.])")
    given = iter(params)
    bound: list[Any] = []

    def bind(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%%"
        bound.append(next(given) if match.group(1) is None else _WrittenInt(written[int(match.group(1))]))
        return "%s"

    return tokens.sub(bind, sql), bound


def _stand_in(name: str, kind: type, n: int) -> Any:
    # Values no real parameter has, so their places in the compiled parameters (or, for an int
    # Django writes into the SQL, the SQL text) can be found. Positive, so that an int may
    # bound a slice, and within a bigint, so that no lookup drops it as out of range.
    if kind is int:
        return 2**62 + 1000 * n
    if kind is str:
        return f"\x1fstand-in {n} for {name}"
    raise TypeError(f"CompiledQuery: parameter {name} must be int or str, not {kind.__name__}")

"""Every private or undocumented Django, asgiref, ninja, psycopg, ServeStatic and uvicorn API ARV relies on, in one place.

The pipeline (arv.pipeline) and the unit of work (arv.db.transaction) build on
Django's ASGI handler and asgiref's thread routing below their documented
surface. Each such API is listed here with where ARV uses it and the signature
ARV expects. `check_internals()` compares the list with the installed packages;
it runs as a Django system check (`manage.py check`, arv.db.apps) and in the
tests (arv/tests/test_internals.py), so an upgrade that renames or reshapes one
fails loudly, naming what changed, instead of breaking requests at run time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psycopg
from asgiref.sync import ThreadSensitiveContext
from django.core.checks import Error
from django.core.handlers import asgi as django_asgi
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.base import BaseHandler
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.query import Query
from django.db.utils import ConnectionHandler
from ninja.security import APIKeyCookie
from servestatic.middleware import ServeStaticMiddleware
from uvicorn import main as uvicorn_main
from uvicorn.protocols.http import h11_impl, httptools_impl


@dataclass(frozen=True)
class Internal:
    owner: Any
    name: str
    # Expected parameter names, in order (None: only that the attribute exists).
    parameters: tuple[str, ...] | None
    used_by: str
    # For an attribute each instance sets (not the class): makes an instance to look on.
    sample: Callable[[], Any] | None = None

    @property
    def label(self) -> str:
        return f"{getattr(self.owner, '__module__', '')}.{getattr(self.owner, '__qualname__', self.owner.__name__)}.{self.name}"


INTERNALS = (
    Internal(
        BaseHandler,
        "_get_response_async",
        ("self", "request"),
        "ApiHandler.load_middleware: the innermost handler of the API's own middleware chain",
    ),
    Internal(BaseHandler, "_middleware_chain", None, "ApiHandler.load_middleware sets it, as Django's does"),
    Internal(BaseHandler, "_view_middleware", None, "ApiHandler.load_middleware sets it, as Django's does"),
    Internal(BaseHandler, "_template_response_middleware", None, "ApiHandler.load_middleware sets it"),
    Internal(BaseHandler, "_exception_middleware", None, "ApiHandler.load_middleware sets it"),
    Internal(BaseHandler, "load_middleware", ("self", "is_async"), "ApiHandler and SiteHandler override it"),
    Internal(
        BaseHandler,
        "make_view_atomic",
        ("self", "view"),
        "SiteHandler: where Django applies ATOMIC_REQUESTS, ARV notes a sync view's database failure",
    ),
    Internal(BaseHandler, "get_response", ("self", "request"), "SiteHandler: the sync stack, run on a worker"),
    Internal(BaseHandler, "get_response_async", ("self", "request"), "ApiHandler: the async stack"),
    Internal(ASGIHandler, "create_request", ("self", "scope", "body_file"), "Pipeline.http: Django's request"),
    Internal(ASGIHandler, "send_response", ("self", "response", "send"), "Pipeline.http: the answer over ASGI"),
    Internal(django_asgi, "get_script_prefix", ("scope",), "Pipeline: --root-path, as Django's handler reads it"),
    Internal(ASGIRequest, "__init__", ("self", "scope", "body_file"), "Pipeline.serve_static"),
    Internal(
        ThreadSensitiveContext,
        "__init__",
        ("self", "executor"),
        "UnitOfWork.serve: Django's async ORM (sync_to_async, thread-sensitive) sent to the unit's worker",
    ),
    Internal(
        BaseDatabaseWrapper,
        "close_if_unusable_or_obsolete",
        ("self",),
        "arv.db.transaction: CONN_MAX_AGE and broken connections at each unit's start and end",
    ),
    Internal(
        ServeStaticMiddleware,
        "__init__",
        ("self", "get_response", "settings"),
        "arv.web.static: ServeStatic at the front of the pipeline, its sources chosen by ARV",
    ),
    Internal(
        uvicorn_main,
        "main",
        None,
        "arv.db.checks.server_processes: uvicorn's own command (click) reads the server's --workers",
    ),
    # arv.pipeline.client_has_left steps receive() once without awaiting it: uvicorn's receive
    # returns a message it already has (the disconnect) without suspending. The signature is
    # pinned here; that behaviour by arv/tests/test_internals.py.
    *(
        Internal(
            cycle,
            "receive",
            ("self",),
            "arv.pipeline.client_has_left: one step of receive() tells whether the client left",
        )
        for cycle in (httptools_impl.RequestResponseCycle, h11_impl.RequestResponseCycle)
    ),
    # arv.db.queries.CompiledQuery compiles a queryset once and runs its SQL itself.
    Internal(Query, "get_compiler", ("self", "using", "connection", "elide_empty"), "CompiledQuery"),
    Internal(SQLCompiler, "as_sql", ("self", "with_limits", "with_col_aliases"), "CompiledQuery: the SQL"),
    Internal(SQLCompiler, "get_converters", ("self", "expressions"), "CompiledQuery: the ORM's field converters"),
    *(
        Internal(SQLCompiler, name, None, f"CompiledQuery: {name} after as_sql()", sample=lambda: _compiler())
        for name in ("klass_info", "select", "annotation_col_map")
    ),
    Internal(QuerySet, "_iterable_class", None, "CompiledQuery: plain model querysets only", sample=QuerySet),
    # companies.models.CompanyQuerySet.count: the counter table only for an unfiltered queryset.
    Internal(QuerySet, "count", ("self",), "CompanyQuerySet.count overrides it"),
    Internal(QuerySet, "_result_cache", None, "CompanyQuerySet.count: an evaluated queryset", sample=QuerySet),
    *(
        Internal(
            Query, name, None, "CompanyQuerySet.count and page_of: what a queryset filters", sample=lambda: Query(None)
        )
        for name in ("where", "alias_map", "group_by", "distinct", "combinator", "is_sliced")
    ),
    Internal(Paginator, "_get_page", ("self", "args", "kwargs"), "arv.db.queries.PageOfPaginator.page"),
    Internal(APIKeyCookie, "_get_key", ("self", "request"), "arv.auth.callers.SessionCookie: no cookie, no caller"),
    Internal(
        ConnectionHandler,
        "all",
        ("self", "initialized_only"),
        "arv.db.transaction and arv.db.workers: the connections this thread opened",
    ),
    Internal(
        BaseDatabaseWrapper,
        "health_check_done",
        None,
        "arv.db.transaction._begin: a connection the unit trusts skips the health check's ping",
        sample=lambda: connections[DEFAULT_DB_ALIAS],
    ),
    Internal(
        psycopg.Connection,
        "_prepared",
        None,
        "arv.db.on_loop: the reads on the event loop share the session's prepared statements",
        sample=lambda: _unconnected(psycopg.Connection),
    ),
    *(
        Internal(
            psycopg.AsyncConnection,
            name,
            None,
            "arv.db.on_loop: an AsyncConnection over a Django connection's session takes its settings",
            sample=lambda: _unconnected(psycopg.AsyncConnection),
        )
        for name in ("_adapters", "_prepared", "_autocommit")
    ),
)


def _unconnected(connection_class: type) -> Any:
    # A psycopg connection object over no server (a closed stand-in for libpq's connection).
    return connection_class(SimpleNamespace(status=psycopg.pq.ConnStatus.BAD))


def _compiler() -> SQLCompiler:
    return Query(None).get_compiler(using=DEFAULT_DB_ALIAS)


def problems() -> list[str]:
    """What no longer matches, one sentence each (empty: everything ARV relies on is as expected)."""
    found = []
    for internal in INTERNALS:
        if not hasattr(internal.sample() if internal.sample else internal.owner, internal.name):
            found.append(f"{internal.label} is gone (used by {internal.used_by})")
            continue
        if internal.parameters is None:
            continue
        actual = tuple(inspect.signature(getattr(internal.owner, internal.name)).parameters)
        if actual != internal.parameters:
            found.append(
                f"{internal.label} takes {actual}, ARV expects {internal.parameters} (used by {internal.used_by})"
            )
    return found


def check_internals(app_configs=None, **kwargs) -> list[Error]:
    """Django system check: every internal ARV relies on is still there, with its signature."""
    return [
        Error(
            problem,
            hint="A Django, asgiref, ninja, ServeStatic or uvicorn upgrade changed what ARV builds on: see arv/internals.py.",
            id="arv.E001",
        )
        for problem in problems()
    ]

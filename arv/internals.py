"""Every private or undocumented Django, asgiref, ServeStatic and uvicorn API ARV relies on, in one place.

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
from dataclasses import dataclass
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.checks import Error
from django.core.handlers import asgi as django_asgi
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.core.handlers.base import BaseHandler
from django.db.backends.base.base import BaseDatabaseWrapper
from servestatic.middleware import ServeStaticMiddleware
from uvicorn import main as uvicorn_main


@dataclass(frozen=True)
class Internal:
    owner: Any
    name: str
    # Expected parameter names, in order (None: only that the attribute exists).
    parameters: tuple[str, ...] | None
    used_by: str

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
)


def problems() -> list[str]:
    """What no longer matches, one sentence each (empty: everything ARV relies on is as expected)."""
    found = []
    for internal in INTERNALS:
        if not hasattr(internal.owner, internal.name):
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
            hint="A Django, asgiref, ServeStatic or uvicorn upgrade changed what ARV builds on: see arv/internals.py.",
            id="arv.E001",
        )
        for problem in problems()
    ]

"""The ASGI entry: `uvicorn arv.asgi:application`.

Two Django handlers share one process, split by path:

- /api/... -> ApiHandler: Django's ASGI handler with API_MIDDLEWARE (async-only)
  and no thread hops of its own. Each request's database work runs on a leased
  database worker (arv.db.transaction), so the handler needs no per-request thread.
- everything else (admin, static files) -> SiteHandler: Django's ASGI handler with
  MIDDLEWARE, unchanged, plus closing the per-request thread's connections.

The lifespan protocol (which Django does not speak) closes every database
connection when the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arv.settings")
django.setup(set_prefix=False)

from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from arv.db.budget import warn_if_budget_too_large  # noqa: E402
from arv.db.workers import close_pool, close_thread_connections  # noqa: E402

logger = logging.getLogger("arv")


class RequestBodyTooLarge(Exception):
    pass


class ApiHandler(ASGIHandler):
    """Django's ASGI handler for /api/, without thread hops.

    Stock ASGIHandler sends request_started/request_finished through
    sync_to_async and closes the response with sync_to_async: two hops onto a
    thread made for this request alone. Their receivers (connection upkeep,
    query-log reset) concern the calling thread's connections, and API requests
    hold none: arv.db.transaction does the same upkeep on the worker's
    connection. So the signals are sent inline and the response closed inline.
    A client that disconnects does not cancel its request: the unit of work is
    short and finishes (commits or rolls back) either way.
    """

    def load_middleware(self, is_async: bool = True) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(settings.API_MIDDLEWARE):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False) or getattr(middleware, "sync_capable", True):
                raise TypeError(f"{path}: API middleware must be async-only (it would cost a thread hop)")
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler

    async def read_body(self, receive):
        body_file = await super().read_body(receive)
        body_file.seek(0, os.SEEK_END)
        size = body_file.tell()
        body_file.seek(0)
        if size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            body_file.close()
            raise RequestBodyTooLarge(size)
        return body_file

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        except RequestBodyTooLarge:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            await self.send_response(
                JsonResponse({"detail": f"The request body is over {limit} bytes."}, status=413), send
            )
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            finally:
                response.close()
        finally:
            body_file.close()


class SiteHandler(ASGIHandler):
    """Django's ASGI handler for the admin: sync views on a thread made for each request."""

    async def handle(self, scope, receive, send) -> None:
        try:
            await super().handle(scope, receive, send)
        finally:
            # Runs on this request's thread (same ThreadSensitiveContext), which dies
            # after the request: a connection left open there would leak.
            await sync_to_async(close_thread_connections)()


class Application:
    """Routes HTTP by path and answers the lifespan protocol."""

    def __init__(self) -> None:
        self.api = ApiHandler()
        self.site = SiteHandler()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            handler = self.api if path == "/api" or path.startswith("/api/") else self.site
            await handler(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        else:
            raise ValueError(f"ARV serves HTTP, not {scope['type']}")

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(warn_if_budget_too_large)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # In-flight requests are done (uvicorn waits for them first).
                await asyncio.to_thread(close_pool)
                logger.info("database connections closed")
                await send({"type": "lifespan.shutdown.complete"})
                return


application = Application()

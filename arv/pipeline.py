"""The one request pipeline: every HTTP request ARV serves goes through Pipeline.http().

       request id          X-Request-ID (the client's if acceptable, else made): on the
                           answer and on every log line written for it (arv.logs).
       /metrics            to Authorization: Bearer ARV_METRICS_TOKEN only, no worker
                           (arv.metrics.endpoint); to anyone else the 404 of any path.
    1. static file?        ServeStatic answers it; no worker, no body read.
    2. limits before work  Content-Length over ARV_MAX_BODY_BYTES: 413 before the body
                           is read; a chunked body is cut off at the limit.
    3. Django's request    ASGIRequest, request_started (Django's signal, as its handler).
                           An admin login after failed ones waits first (arv.auth.slowdown).
    4. unit of work        arv.db.transaction.UnitOfWork: at most one leased database
                           worker, one transaction. A client that leaves while
                           the request waits for a worker is not run.
         /api/...          ApiHandler: API_MIDDLEWARE (async-only) and the async view
                           on the event loop; `run_db`/`run_db_last` and Django's async
                           ORM run on the unit's worker. No thread of its own.
         everything else   SiteHandler: a sync view (the admin's pages) runs with
                           Django's sync MIDDLEWARE on the unit's worker in one trip, as
                           WSGI would run it on its thread; an async view (the admin's
                           storage check) runs on the event loop with Django's async
                           stack, holding the worker only for its database calls.
       the outcome decides: status < 400 commits, anything else rolls back. A
       deadlock or serialization failure, or an open connection whose server went away
       or stopped accepting writes before the commit was sent (a failover), runs the
       request once more (a fresh unit) unless it acted outside the database; an
       unreachable database is 503 with Retry-After; anything else the error it is.
       Every error answer is built by arv.web.error_answers.
    5. /api/ answers JSON  an error page Django made (400, 404, 500, ...) becomes
                           {"detail": ...}; the API never answers HTML.
    6. send, close         response.close() sends request_finished.
       counted             requests by method, route (URL pattern) and status, their
                           latency and their units' database time (arv.metrics.series);
                           a line in the access log if on.

The lifespan protocol (which Django does not speak) checks the event loop (arv.event_loop)
and the connection budget at start-up, starts the pool keeper (arv.db.readiness: opens the
pool's connections before /api/health/ready says ready, then keeps them checked) and, with
metrics on, samples the pool's figures and counts into its series every second; it closes
every database connection at shutdown.

Invariant: in a server process, a database connection is only ever opened on a
database worker (guard_connections), so the bound DB_POOL_SIZE + DB_MAX_OVERFLOW
holds for the admin, the API and anything a contributor adds.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
import tempfile
import threading
import time

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections, connections, reset_queries
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, resolve, set_script_prefix
from django.utils.module_loading import import_string
from servestatic.middleware import ServeStaticMiddleware

from arv.auth.callers import settle_caller
from arv.auth.slowdown import before_login
from arv.db import read_after, replicas
from arv.db.checks import check_renamed_variables, connection_budget
from arv.db.errors import DATABASE_ERRORS, Failure, classify
from arv.db.readiness import start_keeper
from arv.db.transaction import ClientDisconnected, UnitOfWork, current_unit
from arv.db.workers import GIL_SWITCH_INTERVAL, close_pool, get_pool, in_database_worker, worker_database
from arv.event_loop import check_event_loop
from arv.logs import request_id, request_id_from
from arv.metrics import endpoint as metrics
from arv.metrics.series import observe_request, observe_unit
from arv.web import error_answers
from arv.web.static import static_files_middleware

# The cyclic GC's young-generation threshold in a server process (Python's is 700). A request
# leaves no reference cycles (arv/tests/test_reference_cycles.py), yet at 700 the collector ran
# every ~700 allocations that outlived the moment, scanning the live objects of every request in
# flight and promoting them to older generations it then scanned again. Detail at 128
# connections, ~9,000 requests (gc.callbacks): 600 ms in the GC at 700, 45 ms at 20,000 (each
# young collection ~4 ms); creates 280 against 73 ms for ~3,000.
GC_YOUNG_THRESHOLD = 20_000

logger = logging.getLogger("arv")
access_log = logging.getLogger("arv.access")

API_PREFIX = "/api/"
# The route label of what no URL pattern serves (bounded: never the raw path), and of static files.
UNMATCHED_ROUTE, STATIC_ROUTE = "<unmatched>", "<static>"
# The status counted for a request whose client left before it was answered (as nginx logs it).
CLIENT_LEFT = 499


class BodyTooLarge(Exception):
    pass


class ConnectionOutsideWorker(RuntimeError):
    pass


class Pipeline:
    """The ASGI application (arv.asgi.application)."""

    def __init__(self, *, guard_connections: bool = True) -> None:
        self.api = ApiHandler()
        self.site = SiteHandler()
        # Built on the first static request, not now: STATIC_URL (and the static storage's
        # URLs) take the script prefix (--root-path) on first use, which must be a request's.
        self.static_prefix: str = settings.SERVESTATIC_STATIC_PREFIX
        self._static: ServeStaticMiddleware | None = None
        self.max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.metrics_token: str = settings.METRICS_TOKEN
        if guard_connections:
            connection_created.connect(refuse_connections_outside_workers, dispatch_uid="arv.pipeline.guard")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        else:
            raise ValueError(f"ARV serves HTTP, not {scope['type']}")

    async def http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        request_id.set(request_id_from(scope["headers"]))
        path = path_info(scope)
        is_api = path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")
        handler = self.api if is_api else self.site
        if path == metrics.PATH and metrics.authorized(scope["headers"], self.metrics_token):
            # The metrics, to their scraper only (anyone else: the 404 of any unknown path, below).
            await self.send_response(self.site, await metrics.response(), send)
            return
        request = response = route = None
        try:
            # 1. Static files: nothing to read, nothing to lease.
            if path.startswith(self.static_prefix):
                route, response = STATIC_ROUTE, await self.serve_static(scope, send)
                return
            # 2. Limits before work.
            try:
                body = await read_body(scope, receive, self.max_body)
            except RequestAborted:
                return
            except BodyTooLarge:
                response = error_answers.too_large(self.max_body, api=is_api)
                await self.send_response(handler, response, send)
                return
            try:
                # 3. Django's request.
                set_script_prefix(get_script_prefix(scope))
                signals.request_started.send(sender=handler.__class__, scope=scope)
                request, response = handler.create_request(scope, body)
                if request is not None and handler is self.site:
                    response = await before_login(request)  # waits after failed logins; 400 if unreadable
                if request is not None and response is None:
                    # 4. Its unit of work.
                    response = await self.respond(handler, scope, body, request, receive)
                    if response is None:
                        return  # the client left before it was served
                # 5. The API answers JSON only.
                if is_api:
                    response = error_answers.as_api_error(response, request)
                # 6. Send, close.
                await self.send_response(handler, response, send)
            finally:
                body.discard()
        finally:
            if route is None:
                route = route_of(request, path)
            finished(scope, route, response, time.perf_counter() - started)

    async def send_response(self, handler, response: HttpResponseBase, send) -> None:
        response["X-Request-ID"] = request_id.get()
        try:
            await handler.send_response(response, send)
        finally:
            response.close()

    async def respond(self, handler, scope, body, request, receive) -> HttpResponseBase | None:
        """Run the request in a unit of work; once more in a fresh one after a deadlock, or on
        the primary after its replica could not serve it. None when its client left before it
        got a worker."""
        client_left = functools.partial(client_has_left, receive)
        is_api = handler is self.api
        try:
            position = read_after.requested_position(request) if is_api and replicas.enabled() else None
        except read_after.BadPosition as exc:
            return error_answers.error(400, str(exc))
        route = replicas.route_for(request, is_api, position)
        unit, response = await run_unit(handler, request, client_left, route, may_run_again=True)
        if unit is not None and route.on_replica and replicas.rerun_on_primary(request, route, unit):
            # The replica could not serve it (behind, gone, or the request needs the primary):
            # on the primary, where it may read and write (nothing of it was written anywhere).
            body.seek(0)
            request, error = handler.create_request(scope, body)
            if request is None:
                return error
            unit, response = await run_unit(handler, request, client_left, may_run_again=True)
        if runs_again(unit):
            logger.info("%s %s: %s, running it once more", request.method, request.path, _reason(unit.failure))
            body.seek(0)
            request, error = handler.create_request(scope, body)
            if request is None:
                return error
            unit, response = await run_unit(handler, request, client_left)
        if unit is None:
            return None
        failure = classify_failure(unit)
        if response is None or (failure not in (None, Failure.FAULT) and response.status_code == 500):
            # Nothing answered, or Django's 500 page for what is an outage or a conflict.
            response = error_answers.database_error(unit.failure, api=handler is self.api)
        if unit.read_after is not None:  # it committed a write: where a replica shows it
            read_after.give_position(response, request, unit.read_after, browser=not is_api)
        return response

    async def serve_static(self, scope, send) -> HttpResponseBase:
        if self._static is None:
            set_script_prefix(get_script_prefix(scope))
            self._static = static_files_middleware(_static_not_found)
        request = ASGIRequest(scope, tempfile.SpooledTemporaryFile())
        response = await self._static(request)
        await self.send_response(self.site, response, send)
        return response

    async def lifespan(self, receive, send) -> None:
        sampling: asyncio.Future | None = None
        watching: asyncio.Future | None = None
        keeper: asyncio.Future | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                check_event_loop()
                await check_connection_budget()
                keeper = start_keeper()  # opens the pool's connections, then keeps them checked
                if replicas.enabled():
                    replicas.monitor.forget()
                    watching = asyncio.ensure_future(replicas.watch_replicas_forever())
                if self.metrics_token:
                    sampling = asyncio.ensure_future(metrics.sample_pool_forever())
                # What start-up loaded lives as long as the process: the cyclic GC need not scan it
                # again (a full collection of it took ~25 ms, a pause for every request in flight).
                gc.freeze()
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
                sys.setswitchinterval(GIL_SWITCH_INTERVAL)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # In-flight requests are done (uvicorn waits for them first).
                if keeper is not None:
                    keeper.cancel()
                if watching is not None:
                    watching.cancel()
                await asyncio.to_thread(close_pool)
                logger.info("database connections closed")
                if sampling is not None:
                    sampling.cancel()
                    metrics.process_stopped()
                await send({"type": "lifespan.shutdown.complete"})
                return


class ApiHandler(ASGIHandler):
    """/api/: API_MIDDLEWARE and async views on the event loop, database work on the unit's worker."""

    def load_middleware(self, is_async: bool = True) -> None:
        # Django's load_middleware reads settings.MIDDLEWARE; the API has its own, async-only
        # list (a sync middleware would cost a trip to the worker per hook).
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

    async def respond(self, request: HttpRequest, unit: UnitOfWork) -> HttpResponseBase | None:
        return await unit.serve(functools.partial(self.answer, request))

    async def answer(self, request: HttpRequest) -> HttpResponseBase:
        # A bearer token is looked up in the request's first trip: settle_caller makes sure it was.
        return await settle_caller(request, await self.get_response_async(request))


class SiteHandler(ASGIHandler):
    """Everything but /api/ (the admin). A sync view: Django's MIDDLEWARE and the view in one
    trip to the worker. An async view (a coroutine function, such as the admin's storage
    check): Django's async stack on the event loop, as the API's views run; each sync
    middleware hook and database call is a trip to the unit's worker, and the view may
    give the worker back meanwhile (run_outside_db)."""

    def __init__(self) -> None:
        super().__init__()
        self.async_stack = AsyncSiteStack()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def respond(self, request: HttpRequest, unit: UnitOfWork) -> HttpResponseBase | None:
        if serves_async_view(request):
            return await unit.serve(functools.partial(self.async_stack.get_response_async, request))
        return await unit.serve_sync(functools.partial(self.get_response_on_worker, request))

    def get_response_on_worker(self, request: HttpRequest) -> HttpResponseBase:
        set_script_prefix(request.META["SCRIPT_NAME"] or "/")  # script prefixes are per thread
        return self.get_response(request)

    def make_view_atomic(self, view):
        """Where Django applies ATOMIC_REQUESTS: the request already is one transaction; a
        database failure is noted on the unit, and one the pipeline answers better than a
        500 page (an outage, a deadlock it may run again) is answered so at once."""
        view = super().make_view_atomic(view)
        if iscoroutinefunction(view):
            return view

        @functools.wraps(view)
        def noting_failures(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except DATABASE_ERRORS as exc:
                # On the worker, whose connection is the primary's or its replica's: a lost one
                # is never reused, and the request may run once more on a fresh unit.
                current_unit().note_failure(exc, connections[worker_database()])
                if classify(exc) in (Failure.TRANSIENT, Failure.UNAVAILABLE):
                    return error_answers.database_error(exc, api=False)
                raise

        return noting_failures


class AsyncSiteStack(ASGIHandler):
    """settings.MIDDLEWARE as Django's async stack, for the site's async views. Every
    middleware must be async-capable: a sync-only one would block the unit's worker in
    async_to_sync while the rest of the stack waits for that same worker."""

    def load_middleware(self, is_async: bool = True) -> None:
        for path in settings.MIDDLEWARE:
            if not getattr(import_string(path), "async_capable", False):
                raise TypeError(f"{path}: MIDDLEWARE must be async-capable (the admin has async views)")
        super().load_middleware(is_async=True)


async def run_unit(
    handler, request, client_left, route: replicas.Route = replicas.PRIMARY, *, may_run_again: bool = False
) -> tuple[UnitOfWork | None, HttpResponseBase | None]:
    """One run of the request in a fresh unit of work on route's database: (unit, response or
    None if nothing answered); (None, None) if its client left while it waited for a worker. A
    run on a replica that needs the primary names why in unit.needs_primary. may_run_again: the
    pipeline would run the request once more if this run's connection is found lost (runs_again)."""
    unit = UnitOfWork(get_pool(route.database), client_left=client_left, route=route, may_run_again=may_run_again)
    try:
        return unit, await handler.respond(request, unit)
    except ClientDisconnected:
        return None, None
    except replicas.NeedsPrimary as needs:
        unit.needs_primary = needs
        return unit, None
    except DATABASE_ERRORS as exc:  # leasing or beginning failed: nothing ran
        unit.failure = unit.failure or exc
        return unit, None
    finally:
        observe_unit(unit)


def serves_async_view(request: HttpRequest) -> bool:
    """Whether the URL names an async view (the pipeline then serves it on the event loop)."""
    try:
        return iscoroutinefunction(resolve(request.path_info).func)
    except Resolver404:
        return False


def route_of(request: HttpRequest | None, path: str) -> str:
    """The URL pattern that served the request (a metrics label must not be the raw path)."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # not resolved (413, a pool timeout before the view ran, a 404): resolve it now
        try:
            match = resolve(path)
        except Resolver404:
            return UNMATCHED_ROUTE
    return "/" + str(match.route)


def finished(scope, route: str, response: HttpResponseBase | None, seconds: float) -> None:
    """A request is done: counted in the metrics, and a line in the access log if it is on."""
    status = response.status_code if response is not None else CLIENT_LEFT
    observe_request(scope["method"], route, status, seconds)
    if access_log.isEnabledFor(logging.INFO):
        client = scope.get("client") or ("-", 0)
        access_log.info("%s %s %s %d %.1fms", client[0], scope["method"], scope["path"], status, seconds * 1000)


def runs_again(unit: UnitOfWork | None) -> bool:
    """Whether a run's failure is worth one more run in a fresh unit: a deadlock or
    serialization failure, or an open connection whose server went away or stopped accepting
    writes (a failover: the fresh unit gets a new connection) before the commit was sent.
    Never after the request acted outside the database."""
    if unit is None or unit.failure is None or not unit.retryable:
        return False
    if classify(unit.failure) is Failure.TRANSIENT:
        return True
    return unit.connection_lost and not unit.commit_started


def classify_failure(unit: UnitOfWork | None) -> Failure | None:
    return classify(unit.failure) if unit is not None and unit.failure is not None else None


def path_info(scope) -> str:
    """The path below the mount point (--root-path), as Django's request sees it."""
    path, root = scope["path"], get_script_prefix(scope).rstrip("/")
    return path.removeprefix(root) if root and path.startswith(root + "/") else path


def declared_length(scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # h11/httptools refuse such requests before they reach us
    return 0


class RequestBody(tempfile.SpooledTemporaryFile):
    """A request's body, kept for a second run of the request (after a deadlock): Django closes a request's stream once it has read it
    (request.body), which only rewinds this one. The pipeline discards it at the end."""

    def close(self) -> None:
        if not self.closed:
            self.seek(0)

    def discard(self) -> None:
        super().close()


async def read_body(scope, receive, limit: int) -> RequestBody:
    """The request body, refused (BodyTooLarge) before it is read if its declared length is
    over limit, and as soon as it grows past limit otherwise (chunked)."""
    if declared_length(scope) > limit:
        raise BodyTooLarge()
    body = RequestBody(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.discard()
            raise RequestAborted()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            body.discard()
            raise BodyTooLarge()
        body.write(chunk)
        if not message.get("more_body", False):
            body.seek(0)
            return body


def client_has_left(receive) -> bool:
    """Whether the client has disconnected, asked without waiting.

    The body is read, so the only message left to receive is the disconnect, and an
    ASGI server hands over a message it already has without suspending: one step of
    receive() tells. If it would wait, the client is still there (the step is closed).
    """
    step = receive().__await__()
    try:
        step.send(None)
    except StopIteration as received:
        return received.value["type"] == "http.disconnect"
    step.close()
    return False


def spare_django_request_upkeep() -> None:
    """Disconnect Django's own per-request connection upkeep from request_started and
    request_finished (a server's entry, arv.asgi, calls it once; other receivers stay).

    Those receivers (close_old_connections, reset_queries) act on the calling thread's
    connections, and the pipeline sends the signals on the event loop, which in a server
    holds none (guard_connections): the units of work do the same upkeep on their worker
    (arv.db.transaction). Sparing them saves 54 us of the event loop's CPU per request
    (measured: sending both signals took 84 us with them, 30 us without), some 4-8 % of an
    API request's time on the loop (bench/). arv/tests/test_pipeline_http.py checks that a
    receiver a contributor connects still runs.
    """
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)


def refuse_connections_outside_workers(sender, connection, **kwargs) -> None:
    """connection_created receiver: the bound holds only if workers are the only connectors.

    The main thread runs the event loop, where Django itself refuses the sync ORM;
    any other thread (asgiref's shared one, asyncio.to_thread, a view's own thread)
    would hold a connection nobody bounds or upkeeps.
    """
    if in_database_worker() or threading.current_thread() is threading.main_thread():
        return
    connection.close()
    raise ConnectionOutsideWorker(
        f"a database connection was opened on thread {threading.current_thread().name!r}, which is not a "
        "database worker: use run_db() or Django's async ORM inside a request (README, Architecture)"
    )


async def check_connection_budget() -> None:
    """The deploy check arv.W101 (arv.db.checks) for each database (the primary, each replica),
    on a worker of its pool, logged at start-up with this server's process count; and arv.W106,
    a variable set under its old name."""
    for renamed in check_renamed_variables():
        logger.warning("%s (%s). %s", renamed.msg, renamed.id, renamed.hint)
    for database in settings.DATABASES:
        try:
            budget = functools.partial(connection_budget, database)
            problem = await UnitOfWork(get_pool(database), route=replicas.Route(database)).run(budget, last=True)
        except DATABASE_ERRORS as exc:
            logger.warning("could not check the connection budget of %s (unreachable: %s)", database, _reason(exc))
            continue
        if problem is not None:
            logger.warning("%s (%s). %s", problem.msg, problem.id, problem.hint)


async def _static_not_found(request: HttpRequest) -> HttpResponse:
    return error_answers.error(404, error_answers.NOT_FOUND, api=False)


def _reason(exc: BaseException | None) -> str:
    return type(exc.__cause__ or exc).__name__ if exc is not None else "unknown"

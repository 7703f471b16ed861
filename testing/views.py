"""Views written the way a contributor would write them, for the pipeline's tests only.

Served under testing.settings (ROOT_URLCONF = testing.urls); never part of the product's URLs.
"""

from __future__ import annotations

import gc
import sys
import threading
import time

from asgiref.sync import sync_to_async
from django.core.signals import request_finished, request_started
from django.db import connection
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, JsonResponse
from pydantic import BaseModel, model_validator

from arv.db.on_loop import read
from arv.db.queries import CompiledQuery
from arv.db.replicas import reads_primary
from arv.db.transaction import current_unit, outside_database
from arv.web.shaping import finish_insert
from companies.models import Company


def _backend() -> dict[str, object]:
    """Which connection and transaction the calling code is on (run on a worker)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), txid_current()")
        pid, txid = cursor.fetchone()
    return {"pid": pid, "txid": txid, "in_atomic_block": connection.in_atomic_block}


async def async_orm(request: HttpRequest) -> JsonResponse:
    """Idiomatic async Django: every call below must run on the request's worker, in its transaction."""
    name = request.GET["name"]
    before = await sync_to_async(_backend)()
    company = await Company.objects.acreate(name=name, slug=name.lower())
    fetched = await Company.objects.aget(pk=company.pk)
    await Company.objects.filter(pk=fetched.pk).aupdate(notes="updated in the same transaction")
    names = [c.name async for c in Company.objects.filter(pk=company.pk)]
    count = await Company.objects.filter(name=name).acount()
    after = await sync_to_async(_backend)()
    status = int(request.GET.get("status", 201))  # >= 400: the request fails, its writes must go
    return JsonResponse({"before": before, "after": after, "names": names, "count": count}, status=status)


async def outside_worker(request: HttpRequest) -> JsonResponse:
    """What the guard refuses: the ORM on a thread of its own (thread_sensitive=False)."""
    count = await sync_to_async(Company.objects.count, thread_sensitive=False)()
    return JsonResponse({"count": count})


def sync_write_then_fail(request: HttpRequest) -> HttpResponse:
    """A sync (admin-style) view that writes and then fails: nothing of it may stay."""
    name = request.GET["name"]
    Company.objects.create(name=name, slug=name.lower())
    if request.GET.get("fail"):
        raise RuntimeError("the view failed after its write")
    return HttpResponse(str(_backend()["pid"]))


def _lock_in_order(first: str, second: str, pause: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM companies_company WHERE slug = %s FOR UPDATE", [first])
        time.sleep(pause)
        cursor.execute("SELECT 1 FROM companies_company WHERE slug = %s FOR UPDATE", [second])


def sync_lock_pair(request: HttpRequest) -> HttpResponse:
    """Locks two rows in the order given: two such requests in opposite orders deadlock."""
    if request.GET.get("outside"):
        outside_database()
    _lock_in_order(request.GET["first"], request.GET["second"], float(request.GET.get("pause", 0.5)))
    Company.objects.filter(slug=request.GET["first"]).update(notes=f"locked by {request.GET['first']} first")
    return HttpResponse("locked")


async def async_lock_pair(request: HttpRequest) -> JsonResponse:
    """The same from an async view, through run_db (a deadlock retries the whole request)."""
    from arv.db.transaction import run_db

    if request.GET.get("outside"):
        outside_database()
    await run_db(_lock_in_order, request.GET["first"], request.GET["second"], float(request.GET.get("pause", 0.5)))
    return JsonResponse({"locked": True})


async def broken_query(request: HttpRequest) -> JsonResponse:
    """A query against a column that does not exist (as after a migration the server has not seen)."""
    from arv.db.transaction import run_db

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM companies_company")

    await run_db(query)
    return JsonResponse({})


def sync_slow(request: HttpRequest) -> HttpResponse:
    """Holds its worker for a while (the admin under a held lock, say)."""
    time.sleep(float(request.GET.get("seconds", 1)))
    return HttpResponse(str(_backend()["pid"]))


# A receiver a contributor connects to Django's request signals (counted as they arrive).
signals_seen = {"request_started": 0, "request_finished": 0}


def _count_request_started(sender, **kwargs) -> None:
    signals_seen["request_started"] += 1


def _count_request_finished(sender, **kwargs) -> None:
    signals_seen["request_finished"] += 1


request_started.connect(_count_request_started, dispatch_uid="testing.views.started")
request_finished.connect(_count_request_finished, dispatch_uid="testing.views.finished")


async def request_signals(request: HttpRequest) -> JsonResponse:
    """How often the contributor's receivers ran (since this module was imported)."""
    return JsonResponse(signals_seen)


async def threads(request: HttpRequest) -> JsonResponse:
    """The server's threads, by name (no request may create one of its own)."""
    return JsonResponse({"threads": sorted(thread.name for thread in threading.enumerate())})


async def interpreter(request: HttpRequest) -> JsonResponse:
    """How the server process tuned Python at start-up (arv.pipeline's lifespan)."""
    return JsonResponse(
        {
            "gc_threshold": gc.get_threshold(),
            "gc_frozen": gc.get_freeze_count(),
            "switch_interval": sys.getswitchinterval(),
        }
    )


def _outside_thread(orm: bool = False) -> str:
    """Work outside the database: which thread runs it (and, if asked, an ORM call the guard refuses)."""
    if orm:
        Company.objects.count()
    return threading.current_thread().name


async def outside_db(request: HttpRequest) -> JsonResponse:
    """Writes, works outside the database (run_outside_db), writes again: the first write is
    committed before the outside work; the second is kept only if the request succeeds."""
    from arv.db.transaction import run_db, run_outside_db

    name = request.GET["name"]
    before = await run_db(lambda: (Company.objects.create(name=f"{name} 1", slug=f"{name}-1"), _backend())[1])
    thread = await run_outside_db(_outside_thread, orm=bool(request.GET.get("orm")))
    after = await run_db(lambda: (Company.objects.create(name=f"{name} 2", slug=f"{name}-2"), _backend())[1])
    status = int(request.GET.get("status", 200))
    return JsonResponse({"before": before, "after": after, "thread": thread}, status=status)


# The company with a slug, and the PostgreSQL session that read it (compiled once: arv.db.queries).
_by_slug = CompiledQuery(
    lambda slug: Company.objects.filter(slug=slug).annotate(session=RawSQL("pg_backend_pid()", ())), slug=str
)


async def loop_read_then_write(request: HttpRequest) -> JsonResponse:
    """Reads on the event loop (arv.db.on_loop), then writes with the async ORM, then reads again."""
    unit = current_unit()
    slug = request.GET["slug"]
    (existing,) = await read(_by_slug, slug=slug)
    began_before_write = unit.in_transaction  # False: the read ran on the loop, no trip began the transaction
    await Company.objects.acreate(name=f"{existing.name} copy", slug=f"{slug}-copy")
    (copy,) = await read(_by_slug, slug=f"{slug}-copy")  # in the transaction: sees its own write
    worker = await sync_to_async(_backend)()
    return JsonResponse(
        {
            "began_before_write": began_before_write,
            "sessions": [existing.session, copy.session, worker["pid"]],
            "in_atomic_block": worker["in_atomic_block"],
        },
        status=int(request.GET.get("status", 201)),  # >= 400: the request fails, its write must go
    )


class _NewCompany(BaseModel):
    """A new company's answer, and the thread that shaped it (the event loop's, or a worker's)."""

    id: int
    name: str
    created_at: str
    shaped_on: str

    @model_validator(mode="before")
    @classmethod
    def _from_company(cls, company: Company) -> dict[str, object]:
        if company.name.startswith("unshapeable"):
            raise ValueError("this answer cannot be built")
        return {
            "id": company.pk,
            "name": company.name,
            "created_at": company.created_at.isoformat(),
            "shaped_on": threading.current_thread().name,
        }


def _new_company(name: str, look_up: bool) -> Company:
    if look_up:
        Company.objects.filter(name=name).exists()  # a query: never on the event loop
    return Company(name=name, slug=name.lower().replace(" ", "-"))


async def insert_company(request: HttpRequest) -> JsonResponse:
    """A new company through finish_insert (?name=; ?look_up=1: its preparation queries first)."""
    answer = await finish_insert(_NewCompany, _new_company, name=request.GET["name"], look_up="look_up" in request.GET)
    return JsonResponse(answer.model_dump(), status=201)


def _in_recovery() -> bool:
    """Whether the database this worker reads from is a standby (on the request's worker)."""
    from django.db import connections

    from arv.db.workers import worker_database

    with connections[worker_database()].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        return cursor.fetchone()[0]


async def read_where(request: HttpRequest) -> JsonResponse:
    """A read-only GET: which kind of server answered it."""
    from arv.db.transaction import run_db

    return JsonResponse({"in_recovery": await run_db(_in_recovery)})


@reads_primary
async def read_on_primary(request: HttpRequest) -> JsonResponse:
    """A GET that insists on the primary (arv.db.replicas.reads_primary)."""
    from arv.db.transaction import run_db

    return JsonResponse({"in_recovery": await run_db(_in_recovery)})


# Request ids whose first run was made to meet a read-only server (read_only_once).
_made_read_only: set[str] = set()


def read_only_once(request: HttpRequest) -> JsonResponse:
    """A write whose first run meets a server that refuses writes (25006), as a demoted or fenced
    primary would: its transaction is made read-only before the write. The second run (same
    request id) writes. Answers the backend pid of each run it went through."""
    from arv.logs import request_id

    name = request.GET["name"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
        _runs.setdefault(request_id.get(), []).append(pid)
        if request_id.get() not in _made_read_only:
            _made_read_only.add(request_id.get())
            cursor.execute("SET transaction_read_only = on")
    Company.objects.create(name=name, slug=name.lower())
    return JsonResponse({"pids": _runs[request_id.get()]}, status=201)


_runs: dict[str, list[int]] = {}


def lost_at_commit(request: HttpRequest) -> JsonResponse:
    """A write whose connection is lost during its commit (a deferred trigger ends the session
    as the commit runs, as a server stopping at that moment would): whether it committed is
    unknown to the client. Counts its runs per request id (runs_of)."""
    from arv.logs import request_id

    name = request.GET["name"]
    _runs.setdefault(request_id.get(), []).append(0)
    with connection.cursor() as cursor:
        for statement in (
            "CREATE TEMP TABLE commit_tripwire (x int) ON COMMIT DROP",
            "CREATE FUNCTION pg_temp.end_session() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON commit_tripwire DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION pg_temp.end_session()",
            "INSERT INTO commit_tripwire VALUES (1)",
        ):
            cursor.execute(statement)
    Company.objects.create(name=name, slug=name.lower())
    return JsonResponse({}, status=201)


def runs_of(request: HttpRequest) -> JsonResponse:
    """How many times the request with the given id ran a test view (lost_at_commit, read_only_once)."""
    return JsonResponse({"runs": len(_runs.get(request.GET["id"], []))})

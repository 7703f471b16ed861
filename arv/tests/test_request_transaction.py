"""arv.db.transaction: one request, one transaction, decided by the response."""

import asyncio
import json
from contextvars import ContextVar

import pytest
from django.db import connection as main_connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from pydantic import BaseModel, ConfigDict

from arv.auth.callers import BearerToken
from arv.auth.tokens import token_issue
from arv.db.transaction import UnitOfWork, current_unit, run_db
from arv.db.workers import DatabaseWorkerPool, in_database_worker
from arv.web.shaping import finish_db
from companies.models import Company

pytestmark = pytest.mark.django_db(transaction=True)


_pool: DatabaseWorkerPool | None = None


@pytest.fixture(autouse=True, scope="module")
def _own_pool():
    """A pool of this module's own, closed afterwards (its workers' connections would otherwise
    keep the test database from being dropped). Not the process's: the in-process server keeps
    that one warm, and closing it under the server would take the server's readiness away."""
    global _pool
    from django.conf import settings

    _pool = DatabaseWorkerPool(settings.DATABASE_POOL)
    yield
    _pool.close()


def _create(name: str) -> int:
    return Company.objects.create(name=name, slug=name.lower()).pk


def _serve(view) -> HttpResponse:
    """Run view(request) in a unit of work, on an event loop, as the pipeline does."""
    return asyncio.run(_in_unit(view))


async def _in_unit(view) -> HttpResponse:
    return await UnitOfWork(_pool).serve(lambda: view(HttpRequest()))


def test_a_successful_response_commits():
    async def view(request):
        await run_db(_create, "Committed")
        return JsonResponse({}, status=201)

    assert _serve(view).status_code == 201
    assert Company.objects.filter(name="Committed").exists()


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500, 503])
def test_an_error_response_rolls_back_every_write(status):
    async def view(request):
        await run_db(_create, "First")
        await run_db(_create, "Second")
        return JsonResponse({"detail": "no"}, status=status)  # returned, not raised: ninja's way

    assert _serve(view).status_code == status
    assert not Company.objects.filter(name__in=["First", "Second"]).exists()


def test_an_exception_rolls_back():
    async def view(request):
        await run_db(_create, "Raised")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _serve(view)
    assert not Company.objects.filter(name="Raised").exists()


def test_all_work_of_a_request_runs_on_one_worker_in_one_transaction():
    def facts():
        return in_database_worker(), main_connection.in_atomic_block, id(main_connection)

    async def view(request):
        first = await run_db(facts)
        second = await run_db(facts)
        return JsonResponse({"first": first, "second": second})

    body = json.loads(_serve(view).content)
    assert body["first"] == body["second"]
    assert body["first"][:2] == [True, True]


# A trip to the worker runs in a copy of the caller's context: what one trip sets here, a later
# trip does not see. So a value seen by the trip's own work shows it ran in the same trip.
_set_in_this_trip: ContextVar[str | None] = ContextVar("set_in_this_trip", default=None)


def test_work_before_the_next_trip_runs_first_in_that_same_trip():
    order = []

    def first():
        order.append("first")
        _set_in_this_trip.set("by first")

    def then():
        order.append("then")
        return _set_in_this_trip.get(), in_database_worker(), main_connection.in_atomic_block

    async def view(request):
        current_unit().before_next_trip(first)
        leased = current_unit().worker is not None
        seen, later = await run_db(then), await run_db(then)
        return JsonResponse({"leased_before": leased, "seen": seen, "later": later, "order": order})

    body = json.loads(_serve(view).content)
    assert body["leased_before"] is False  # deferring costs no trip
    assert body["order"] == ["first", "then", "then"]
    assert body["seen"] == ["by first", True, True]  # the same trip, in the request's transaction
    assert body["later"] == [None, True, True]  # a later trip is a trip of its own


def test_work_before_the_next_trip_that_raises_stops_that_trip_and_its_writes():
    def refuse():
        raise PermissionError("not you")

    async def view(request):
        current_unit().before_next_trip(refuse)
        try:
            await finish_db(CompanyName, _created, "Never")
        except PermissionError:
            return JsonResponse({"detail": "no"}, status=401)
        return JsonResponse({}, status=201)

    assert _serve(view).status_code == 401
    assert not Company.objects.filter(name="Never").exists()


def test_a_bearer_tokens_lookup_joins_the_requests_first_trip(django_user_model):
    user = django_user_model.objects.create_user("caller", is_staff=True)
    token = token_issue(user=user)[1]

    async def view(request):
        caller = await BearerToken().authenticate(request, token)
        leased = current_unit().worker is not None
        name, staff = await run_db(lambda: (caller.username, caller.is_staff))
        return JsonResponse({"leased_by_authenticate": leased, "caller": [name, staff]})

    body = json.loads(_serve(view).content)
    assert body == {"leased_by_authenticate": False, "caller": ["caller", True]}


def test_run_db_outside_a_request_is_refused():
    with pytest.raises(RuntimeError):
        asyncio.run(run_db(_create, "Nowhere"))


class CompanyName(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str


class CompanyNumber(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int  # a Company has no such attribute: shaping fails


def _created(name: str) -> Company:
    return Company.objects.create(name=name, slug=name.lower())


def test_finish_db_shapes_the_answer_and_commits_before_the_view_returns():
    seen_from_outside = []

    def committed(name: str) -> bool:  # on another worker, in its own transaction
        return Company.objects.filter(name=name).exists()

    async def view(request):
        answer = await finish_db(CompanyName, _created, "Finished")
        # Committed already: a second request's unit of work sees the row.
        other = await _in_unit(lambda r: _visible(r, committed, "Finished"))
        seen_from_outside.append(json.loads(other.content))
        return JsonResponse({"type": type(answer).__name__, "name": answer.name}, status=201)

    response = _serve(view)
    assert json.loads(response.content) == {"type": "CompanyName", "name": "Finished"}
    assert seen_from_outside == [True]


async def _visible(request, fn, *args):
    return JsonResponse(await run_db(fn, *args), safe=False)


def test_finish_db_rolls_back_when_the_answer_cannot_be_shaped():
    async def view(request):
        await run_db(_create, "Earlier")
        await finish_db(CompanyNumber, _created, "Unshapeable")
        return JsonResponse({}, status=201)

    with pytest.raises(Exception, match="number"):
        _serve(view)
    assert not Company.objects.filter(name__in=["Earlier", "Unshapeable"]).exists()


def test_finish_db_rolls_back_when_its_function_raises():
    def create_then_fail(name: str) -> None:
        _create(name)
        raise RuntimeError("boom")

    async def view(request):
        await finish_db(CompanyName, create_then_fail, "Half")
        return JsonResponse({})

    with pytest.raises(RuntimeError):
        _serve(view)
    assert not Company.objects.filter(name="Half").exists()


def test_no_database_work_after_finish_db():
    async def view(request):
        await finish_db(CompanyName, _created, "Once")
        await run_db(_create, "Twice")
        return JsonResponse({})

    with pytest.raises(RuntimeError, match="already committed"):
        _serve(view)
    assert list(Company.objects.filter(name__in=["Once", "Twice"]).values_list("name", flat=True)) == ["Once"]

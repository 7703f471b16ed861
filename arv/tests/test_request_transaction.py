"""arv.db.transaction: one API request, one transaction, decided by the response."""

import asyncio

import pytest
from django.db import connection as main_connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from arv.db.transaction import RequestTransactionMiddleware, run_db
from arv.db.workers import in_database_worker
from companies.models import Company

pytestmark = pytest.mark.django_db(transaction=True)


def _create(name: str) -> int:
    return Company.objects.create(name=name, slug=name.lower()).pk


def _serve(view) -> HttpResponse:
    """Run view(request) inside the middleware, on an event loop, as the API handler does."""
    middleware = RequestTransactionMiddleware(view)
    return asyncio.run(middleware(HttpRequest()))


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

    import json

    body = json.loads(_serve(view).content)
    assert body["first"] == body["second"]
    assert body["first"][:2] == [True, True]


def test_run_db_outside_a_request_is_refused():
    with pytest.raises(RuntimeError):
        asyncio.run(run_db(_create, "Nowhere"))

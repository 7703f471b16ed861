"""A new row on the event loop (arv.web.shaping.finish_insert, arv.db.on_loop.insert_last): BEGIN
with the INSERT, then COMMIT, on the request's leased session, and still one transaction that a
failed request leaves nothing of. Real uvicorn processes and PostgreSQL."""

from __future__ import annotations

import datetime

import httpx
import pytest

from companies.models import Company
from testing.clusters import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# One session: a request that left it inside a transaction, or broken, fails the next one.
ONE_SESSION = {"DJANGO_SETTINGS_MODULE": "testing.settings", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}


@pytest.fixture
def insert(start_server):
    def start(**env: str):
        server = start_server(**{**ONE_SESSION, **env})
        # The pool keeper has opened the worker's connection: a unit may trust it (no ping).
        wait_for(lambda: httpx.get(f"{server.url}/api/health/ready").status_code == 200, "the pool to be warm")

        def create(name: str, **params: str) -> httpx.Response:
            return httpx.post(f"{server.url}/api/test/insert-company", params={"name": name, **params}, timeout=30)

        return server, create

    return start


def test_a_new_row_is_inserted_and_committed_on_the_event_loop(insert):
    _, create = insert()
    answer = create("Loop Insert")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["shaped_on"] == "MainThread"  # the event loop's thread: no trip to a worker
    stored = Company.objects.get(pk=body["id"])  # committed: another session sees it
    assert stored.name == "Loop Insert"
    assert stored.created_at == datetime.datetime.fromisoformat(body["created_at"])  # auto_now_add, as saved


def test_an_answer_that_cannot_be_built_leaves_no_row_and_a_clean_session(insert):
    _, create = insert()
    assert create("unshapeable one").status_code == 500
    assert not Company.objects.filter(name="unshapeable one").exists()
    # The one session was rolled back: the next request on it inserts and commits.
    answer = create("After The Failure")
    assert answer.status_code == 201, answer.text
    assert answer.json()["shaped_on"] == "MainThread"
    assert Company.objects.filter(name="After The Failure").exists()


def test_a_row_a_constraint_refuses_is_409_and_the_session_is_usable_again(insert, make_company):
    make_company("Taken Name", slug="taken-name")
    _, create = insert()
    answer = create("TAKEN NAME")  # unique ignoring case: the INSERT fails inside the transaction
    assert answer.status_code == 409, answer.text
    assert Company.objects.filter(name__iexact="taken name").count() == 1
    assert create("Free Name").status_code == 201


def test_a_preparation_that_queries_runs_on_the_worker(insert):
    # Django refuses a query on the event loop (SynchronousOnlyOperation) before sending it: the
    # whole create then runs on the worker, in one trip.
    _, create = insert()
    answer = create("Looked Up First", look_up="1")
    assert answer.status_code == 201, answer.text
    assert answer.json()["shaped_on"].startswith("arv-db")
    assert Company.objects.filter(name="Looked Up First").exists()


def test_with_sql_logged_a_new_row_is_inserted_on_the_worker(insert):
    # DB_ECHO logs each statement through Django's debug cursor, which only the worker's trips use.
    server, create = insert(DB_ECHO="true")
    answer = create("Echoed Insert")
    assert answer.status_code == 201, answer.text
    assert answer.json()["shaped_on"].startswith("arv-db")
    assert 'INSERT INTO "companies_company"' in server.output()


def test_with_async_unsafe_allowed_a_preparation_that_queries_still_runs_on_the_worker(insert):
    # DJANGO_ALLOW_ASYNC_UNSAFE lifts Django's refusal: the query would run on the loop's thread,
    # on a connection outside the pool, and the row be inserted beside it.
    _, create = insert(DJANGO_ALLOW_ASYNC_UNSAFE="true")
    answer = create("Unsafe Allowed", look_up="1")
    assert answer.status_code == 201, answer.text
    assert answer.json()["shaped_on"].startswith("arv-db")

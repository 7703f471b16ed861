"""Reads on the event loop (arv.db.on_loop): before a request's transaction, on its own leased
session, with no thread hop; a request's writes still form one transaction. Real uvicorn
processes (with the connection guard) and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from companies.models import Company
from testing.clusters import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TEST_VIEWS = {"DJANGO_SETTINGS_MODULE": "testing.settings"}


def _warm(server) -> None:
    # The pool keeper has opened the workers' connections: a unit may trust them (no ping).
    wait_for(lambda: httpx.get(f"{server.url}/api/health/ready").status_code == 200, "the pool to be warm")


def test_a_read_before_the_transaction_runs_on_the_loop_on_the_units_own_session(start_server, make_company):
    make_company("Loop Co", slug="loop")
    server = start_server(**TEST_VIEWS, DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0")
    _warm(server)
    answer = httpx.get(f"{server.url}/api/test/loop-read-then-write", params={"slug": "loop"}, timeout=30)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["began_before_write"] is False  # no trip to the worker before the write
    # One session throughout: the loop's read, the read in the transaction and the worker's own query.
    assert len(set(body["sessions"])) == 1
    assert body["in_atomic_block"] is True
    assert Company.objects.filter(slug="loop-copy").exists()


def test_a_request_that_fails_after_reading_on_the_loop_leaves_none_of_its_writes(start_server, make_company):
    make_company("Failing Loop Co", slug="failing")
    server = start_server(**TEST_VIEWS, DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0")
    _warm(server)
    answer = httpx.get(
        f"{server.url}/api/test/loop-read-then-write", params={"slug": "failing", "status": 500}, timeout=30
    )
    assert answer.status_code == 500
    assert answer.json()["began_before_write"] is False
    assert not Company.objects.filter(slug="failing-copy").exists()


def test_with_sql_logged_every_read_runs_on_the_worker(start_server, make_company):
    # DB_ECHO logs each statement through Django's debug cursor, which only the worker's trips use.
    make_company("Echo Co", slug="echo")
    server = start_server(**TEST_VIEWS, DB_ECHO="true", DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0")
    _warm(server)
    answer = httpx.get(f"{server.url}/api/test/loop-read-then-write", params={"slug": "echo"}, timeout=30)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["began_before_write"] is True
    assert len(set(body["sessions"])) == 1
    assert 'WHERE "companies_company"."slug" = ' in server.output()

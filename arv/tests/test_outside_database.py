"""Work outside the database holds no worker (arv.db.transaction: run_outside_db for async
views, outside_result for sync ones), and each part of the request commits or rolls back
as it should. Real uvicorn processes (with the connection guard) and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from companies.models import Company

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ONE_WORKER = {"DJANGO_SETTINGS_MODULE": "testing.settings", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}


def names(prefix: str) -> list[str]:
    return sorted(Company.objects.filter(name__startswith=prefix).values_list("name", flat=True))


def test_run_outside_db_commits_the_first_part_and_runs_off_the_worker(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-db", params={"name": "Split"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["thread"] == "arv-outside-db"
    assert body["before"]["txid"] != body["after"]["txid"]  # two transactions
    assert body["after"]["in_atomic_block"] is True
    assert names("Split") == ["Split 1", "Split 2"]


def test_a_failing_request_keeps_only_what_was_committed_before_the_outside_work(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-db", params={"name": "Half", "status": 400}, timeout=30)
    assert answer.status_code == 400
    assert names("Half") == ["Half 1"]


def test_the_database_is_refused_outside(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-db", params={"name": "Orm", "orm": 1}, timeout=30)
    assert answer.status_code == 500
    assert "not a database worker" in server.output()
    # The worker was given back: the server still answers with its only worker.
    assert httpx.get(f"{server.url}/api/health", timeout=30).status_code == 200


def test_outside_result_runs_the_sync_request_again_with_the_result(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/site-test/outside-result", params={"name": "Twice"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["thread"] == "arv-outside-db"
    assert names("Twice") == ["Twice"]  # one write: the first run asked and rolled back


def test_outside_result_of_a_failing_sync_request_leaves_nothing(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/site-test/outside-result", params={"name": "Gone", "status": 400}, timeout=30)
    assert answer.status_code == 400
    assert names("Gone") == []


def test_outside_result_raises_the_outside_error_in_the_view(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/site-test/outside-result", params={"name": "Err", "orm": 1}, timeout=30)
    assert answer.status_code == 500
    assert "not a database worker" in server.output()
    assert names("Err") == []

"""Traceable logs (arv.logs): a request id on the answer and on every log line written for
the request, the database worker's included; JSON lines with ARV_LOG_FORMAT=json."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from arv.db.transaction import in_own_thread
from arv.logs import request_id
from companies.models import Company

pytestmark = pytest.mark.django_db(transaction=True)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="servers run on the PostgreSQL test database"
)


def test_the_clients_request_id_comes_back(live_url):
    response = httpx.get(f"{live_url}/api/health", headers={"X-Request-ID": "proxy-7f3a.01"})
    assert response.headers["X-Request-ID"] == "proxy-7f3a.01"


@pytest.mark.parametrize(
    "path", ["/api/health", "/api/no-such-endpoint", "/admin/login/", "/static/admin/css/base.css"]
)
def test_every_answer_carries_a_request_id_made_when_none_was_sent(live_url, path):
    first, second = (httpx.get(live_url + path).headers["X-Request-ID"] for _ in range(2))
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@pytest.mark.parametrize("sent", ["", "x" * 129, "two words", "line\tbreak", 'quote"d', "é".encode()])
def test_an_unacceptable_request_id_is_replaced(live_url, sent):
    answered = httpx.get(f"{live_url}/api/health", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", answered)


@pytest.mark.slow
@postgres_only
def test_one_request_id_from_the_answer_into_the_json_logs_of_the_database_worker(start_server, django_user_model):
    company = Company.objects.create(name="Traced", slug="traced")
    _, token = token_issue(user=django_user_model.objects.create_user("tracer", is_staff=True))
    server = start_server(ARV_LOG_FORMAT="json", DB_ECHO="true", ARV_ACCESS_LOG="true")
    response = httpx.get(f"{server.url}/api/companies/{company.pk}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    server.stop()

    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]  # every line is JSON
    assert all({"timestamp", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    traced = [line for line in lines if line["request_id"] == request_id]
    # The SQL the request ran, logged on its database worker's thread ...
    sql = [line for line in traced if line["logger"] == "django.db.backends"]
    assert any("companies_company" in line["message"] for line in sql)
    assert all(line["thread"].startswith("arv-db-") for line in sql)
    # ... and its line in the access log, on the event loop.
    (access,) = [line for line in traced if line["logger"] == "arv.access"]
    assert f"GET /api/companies/{company.pk} 200" in access["message"]


@pytest.mark.slow
@postgres_only
def test_log_level_and_the_text_format_carry_the_request_id(start_server):
    server = start_server(ARV_LOG_LEVEL="WARNING", DB_POOL_TIMEOUT="0.5")
    response = httpx.get(f"{server.url}/api/no-such-endpoint", headers={"X-Request-ID": "text-format-1"})
    assert response.status_code == 404
    server.stop()
    output = server.output()
    assert re.search(r"WARNING django.request \[text-format-1\] Not Found: /api/no-such-endpoint", output)
    assert "database connections closed" not in output  # arv's INFO line, below ARV_LOG_LEVEL


def test_work_outside_the_database_logs_with_the_request_id():
    # run_outside_db runs its work on a thread of its own: in the request's context.
    async def request() -> str:
        request_id.set("outside-7")
        return await in_own_thread(request_id.get)

    assert asyncio.run(request()) == "outside-7"


@pytest.mark.slow
@postgres_only
def test_a_path_cannot_forge_a_log_line(start_server):
    forged = "2026-12-04 18:00:00,000 INFO arv.access [forged] 10.0.0.1 GET /admin/ 200"
    server = start_server(ARV_ACCESS_LOG="true")
    path = "/nothere%0a" + forged.replace(" ", "%20") + "%00%1b[31m"
    response = httpx.get(server.url + path)
    assert response.status_code == 404
    server.stop()
    output = server.output()

    assert "\x00" not in output and "\x1b" not in output
    assert not any(line.startswith("2026-12-04 18:00:00,000") for line in output.splitlines())
    access_lines = [
        line for line in output.splitlines() if re.match(r"\S+ \S+ INFO arv\.access \[[0-9a-f]{32}\]", line)
    ]
    (access,) = [line for line in access_lines if "nothere" in line]
    assert "nothere\\x0a2026-12-04 18:00:00,000 INFO arv.access [forged]" in access
    assert "\\x00\\x1b[31m 404 " in access


@pytest.mark.slow
@postgres_only
def test_uvicorns_no_access_log_is_honoured(start_server):
    server = start_server()  # started with --no-access-log (testing.servers)
    assert httpx.get(f"{server.url}/api/health?secret=in-the-query").status_code == 200
    server.stop()
    output = server.output()
    assert "Application startup complete" in output  # uvicorn's own log is there ...
    assert "uvicorn.access" not in output and "in-the-query" not in output  # ... its access log is not

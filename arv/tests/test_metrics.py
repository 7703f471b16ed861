"""/metrics (arv.metrics): real uvicorn processes, real load, scraped as Prometheus scrapes them.

Two server processes (`--workers 2`) keep their series in one directory; a scrape of either
adds them up. The endpoint exists only with ARV_METRICS_TOKEN, answers only that bearer
token, and to anyone else is the 404 of any path ARV does not serve.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from arv.auth.tokens import token_issue
from arv.metrics.directory import SERVERS_DIR
from companies.models import Company
from testing.fixtures import SERVER_POOL
from testing.servers import PROJECT_DIR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="servers run on the PostgreSQL test database"),
]

METRICS_TOKEN = "scrape-me-0123456789"
BOUND = int(SERVER_POOL["DB_POOL_SIZE"]) + int(SERVER_POOL["DB_MAX_OVERFLOW"])
REQUESTS = 300
DETAIL_ROUTE = "/api/companies/<company_id>"


@pytest.fixture
def token(django_user_model) -> str:
    _, secret = token_issue(user=django_user_model.objects.create_user("metrics-staff", is_staff=True))
    return secret


def scrape(url: str, token: str = METRICS_TOKEN) -> dict[str, list]:
    """metric family name -> its samples, parsed as Prometheus parses the text format."""
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list, name: str, **labels: str) -> float:
    """The sum of the samples called name whose labels include labels."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def load(url: str, token: str, paths: list[str]) -> list[int]:
    def one(path: str) -> int:
        return httpx.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, paths))


def scrape_until(url: str, done, timeout: float = 10.0) -> dict[str, list]:
    """Scrape until done(metrics): the last counts land just after the last answer went out,
    and each process samples its pool gauges once a second."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = scrape(url)
        if done(metrics) or time.monotonic() > deadline:
            return metrics
        time.sleep(0.2)


def test_two_server_processes_under_load_add_up_in_one_scrape(start_server, token):
    company = Company.objects.create(name="Metered", slug="metered")
    server = start_server(uvicorn_args=("--workers", "2"), ARV_METRICS_TOKEN=METRICS_TOKEN)
    # With no PROMETHEUS_MULTIPROC_DIR, the server keeps its metrics in a directory of its own start.
    (server_dir,) = SERVERS_DIR.glob(f"{server.process.pid}-*")

    paths = [f"/api/companies/{company.pk}"] * REQUESTS + ["/api/companies/999999"] * 20
    statuses = load(server.url, token, paths)
    assert statuses.count(200) == REQUESTS and statuses.count(404) == 20

    def complete(metrics) -> bool:
        pids = {s.labels["pid"] for s in metrics.get("arv_db_pool_bound", [])}
        served = value(metrics["arv_http_requests"], "arv_http_requests_total", route=DETAIL_ROUTE)
        return len(pids) == 2 and served == REQUESTS + 20

    metrics = scrape_until(server.url, complete)
    requests = metrics["arv_http_requests"]
    # Counted by route (the URL pattern, never the raw path) and status, across both processes.
    assert value(requests, "arv_http_requests_total", method="GET", route=DETAIL_ROUTE, status="200") == REQUESTS
    assert value(requests, "arv_http_requests_total", method="GET", route=DETAIL_ROUTE, status="404") == 20
    assert not [s for s in requests if str(company.pk) in s.labels["route"]]
    latency = metrics["arv_http_request_duration_seconds"]
    assert value(latency, "arv_http_request_duration_seconds_count", route=DETAIL_ROUTE) == REQUESTS + 20
    assert 0 < value(latency, "arv_http_request_duration_seconds_sum", route=DETAIL_ROUTE) < 60 * REQUESTS
    # Every request that reached its view leased a worker and spent time in the database.
    leases = value(metrics["arv_db_worker_wait_seconds"], "arv_db_worker_wait_seconds_count")
    assert leases >= REQUESTS + 20
    assert value(metrics["arv_db_request_seconds"], "arv_db_request_seconds_count") >= REQUESTS + 20
    assert value(metrics["arv_db_request_seconds"], "arv_db_request_seconds_sum") > 0
    # Each process opened its own connections (its start-up budget check is the first).
    assert value(metrics["arv_db_connections_opened"], "arv_db_connections_opened_total") >= 2
    assert value(metrics["arv_db_pool_timeouts"], "arv_db_pool_timeouts_total") == 0

    # One pool per process: the configured bound, some workers, none over it.
    processes = {s.labels["pid"] for s in metrics["arv_db_pool_bound"]}
    assert len(processes) == 2
    for pid in processes:
        assert value(metrics["arv_db_pool_bound"], "arv_db_pool_bound", pid=pid) == BOUND
        assert 1 <= value(metrics["arv_db_pool_workers"], "arv_db_pool_workers", pid=pid) <= BOUND
        assert 0 <= value(metrics["arv_db_pool_in_use"], "arv_db_pool_in_use", pid=pid) <= BOUND
        assert value(metrics["arv_db_pool_waiting"], "arv_db_pool_waiting", pid=pid) == 0
    assert {f"gauge_liveall_{pid}.db" for pid in processes} <= set(os.listdir(server_dir))

    # A scrape is not counted as a request served, and needs no worker.
    again = scrape(server.url)
    assert value(again["arv_http_requests"], "arv_http_requests_total", route="/metrics") == 0
    assert value(again["arv_db_worker_wait_seconds"], "arv_db_worker_wait_seconds_count") == leases

    # Stopped, each process takes its pool gauges with it; the directory is the next start's to remove.
    server.stop()
    assert not [name for name in os.listdir(server_dir) if name.startswith("gauge_liveall_")]


def test_a_killed_process_pool_gauges_go_at_the_next_scrape(start_server, tmp_path):
    metrics_dir = tmp_path / "metrics"
    server = start_server(
        uvicorn_args=("--workers", "2"), ARV_METRICS_TOKEN=METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    pids = scrape_until(server.url, lambda m: len(m.get("arv_db_pool_bound", [])) == 2)["arv_db_pool_bound"]
    victim = int(pids[0].labels["pid"])
    os.kill(victim, 9)  # no shutdown, no mark_process_dead: the next scrape notices
    time.sleep(0.5)
    remaining = {s.labels["pid"] for s in scrape(server.url)["arv_db_pool_bound"]}
    assert str(victim) not in remaining
    assert not (metrics_dir / f"gauge_liveall_{victim}.db").exists()


def test_a_pool_timeout_is_counted_with_its_503(start_server):
    server = start_server(
        ARV_METRICS_TOKEN=METRICS_TOKEN,
        DJANGO_SETTINGS_MODULE="testing.settings",
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="0",
        DB_POOL_TIMEOUT="0.5",
    )
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(httpx.get, f"{server.url}/site-test/slow", params={"seconds": 2}, timeout=30)
        time.sleep(0.5)  # the slow one holds the only worker
        waited = httpx.get(f"{server.url}/site-test/slow", params={"seconds": 0}, timeout=30)
        assert waited.status_code == 503
        assert slow.result().status_code == 200
    metrics = scrape(server.url)
    assert value(metrics["arv_db_pool_timeouts"], "arv_db_pool_timeouts_total") == 1
    unavailable = metrics["arv_http_unavailable_responses"]
    assert value(unavailable, "arv_http_unavailable_responses_total", cause="pool_timeout") == 1
    requests = metrics["arv_http_requests"]
    assert value(requests, "arv_http_requests_total", route="/site-test/slow", status="503") == 1
    assert value(metrics["arv_db_worker_wait_seconds"], "arv_db_worker_wait_seconds_bucket", le="0.25") < (
        value(metrics["arv_db_worker_wait_seconds"], "arv_db_worker_wait_seconds_bucket", le="+Inf")
    )


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {METRICS_TOKEN}", "Bearer"])
def test_without_the_token_metrics_is_the_404_of_any_unknown_path(start_server, authorization):
    server = start_server(ARV_METRICS_TOKEN=METRICS_TOKEN)
    headers = {"Authorization": authorization} if authorization else {}
    metrics = httpx.get(f"{server.url}/metrics", headers=headers)
    unknown = httpx.get(f"{server.url}/no-such-page", headers=headers)
    assert metrics.status_code == unknown.status_code == 404
    assert metrics.content == unknown.content.replace(b"/no-such-page", b"/metrics")
    assert metrics.headers["content-type"] == unknown.headers["content-type"]


def test_metrics_are_off_without_a_token(live_url):
    # The in-thread server has no ARV_METRICS_TOKEN: no token opens /metrics.
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer anything"}):
        assert httpx.get(f"{live_url}/metrics", headers=headers).status_code == 404


def test_dbstatus_shows_every_server_process_pool(start_server, tmp_path):
    metrics_dir = tmp_path / "metrics"
    env = {"ARV_METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = start_server(uvicorn_args=("--workers", "2"), **env)
    pids = {
        s.labels["pid"]
        for s in scrape_until(server.url, lambda m: len(m.get("arv_db_pool_bound", [])) == 2)["arv_db_pool_bound"]
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "dbstatus", "--json"],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": server_database_url(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (status,) = json.loads(result.stdout)["servers"]
    assert status["metrics_dir"] == str(metrics_dir)
    assert {str(p["pid"]) for p in status["processes"]} == pids
    assert all(p["bound"] == BOUND and 1 <= p["workers"] <= BOUND for p in status["processes"])


def server_database_url() -> str:
    from testing.postgres import current_database_url

    return current_database_url()


def test_a_dead_connection_is_replaced_unseen_and_counted_as_a_reconnect(start_server, observer):
    server = start_server(ARV_METRICS_TOKEN=METRICS_TOKEN)
    assert httpx.get(f"{server.url}/api/health").status_code == 200
    assert observer.terminate_all() >= 1  # the server's connections die under it
    # Found dead (by the health check, or by the request's first query: then it runs once more), replaced.
    assert httpx.get(f"{server.url}/api/health").status_code == 200
    metrics = scrape(server.url)
    assert value(metrics["arv_db_reconnects"], "arv_db_reconnects_total") == 1
    assert value(metrics["arv_db_connections_opened"], "arv_db_connections_opened_total") >= 2


def test_the_default_metrics_directory_is_private(start_server, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    start_server(TMPDIR=str(temporary), ARV_METRICS_TOKEN=METRICS_TOKEN)
    servers_dir = temporary / "arv-metrics"
    assert stat.S_IMODE(servers_dir.stat().st_mode) == 0o700
    (server_dir,) = servers_dir.iterdir()
    assert stat.S_IMODE(server_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("unsafe", ["world-writable", "another user's", "a symbolic link"])
def test_a_server_refuses_a_default_metrics_directory_others_control(tmp_path, collected_static, unsafe):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    servers_dir = temporary / "arv-metrics"
    if unsafe == "a symbolic link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        servers_dir.symlink_to(tmp_path / "elsewhere")
    else:
        servers_dir.mkdir(mode=0o700)
        if unsafe == "world-writable":
            servers_dir.chmod(0o777)
        elif os.geteuid() == 0:
            os.chown(servers_dir, 65534, 65534)
        else:
            pytest.skip("only root can give a directory to another user")
    started = subprocess.run(
        [sys.executable, "-m", "uvicorn", "arv.asgi:application", "--host", "127.0.0.1", "--port", "0"],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "TMPDIR": str(temporary),
            "ARV_STATIC_ROOT": str(collected_static),
            "ARV_METRICS_TOKEN": METRICS_TOKEN,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert f"The metrics directory {servers_dir}" in started.stderr
    assert not list((tmp_path / "elsewhere").iterdir()) if unsafe == "a symbolic link" else True

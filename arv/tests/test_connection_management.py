"""Connection management under a real uvicorn process and real PostgreSQL (README, "Architecture").

Each test starts `uvicorn arv.asgi:application` as an operator would, with its own
DB_* settings, on the test database, and watches it from PostgreSQL's side.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import httpx
import pytest
from django.core.management import call_command
from django.db import connection

from arv.auth.tokens import token_issue
from testing.admin import log_in
from testing.clusters import manage
from testing.fixtures import SERVER_POOL
from testing.postgres import PeakBackends, ThrowawayCluster, current_database_url, hold_lock_on_companies
from testing.servers import UvicornProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="measures PostgreSQL sessions"),
]

BOUND = 6


@pytest.fixture
def token(django_user_model) -> str:
    return token_issue(user=django_user_model.objects.create_user("ops", is_staff=True))[1]


@pytest.fixture
def company(make_company):
    return make_company("Measured Co")


def _hammer(url: str, token: str, path: str, clients: int, requests_each: int) -> list[int]:
    """clients threads, each with its own keep-alive connection, each sending requests_each GETs."""

    def one_client(_: int) -> list[int]:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            return [client.get(path).status_code for _ in range(requests_each)]

    with ThreadPoolExecutor(clients) as pool:
        return [status for statuses in pool.map(one_client, range(clients)) for status in statuses]


def test_connections_are_reused_across_requests(start_server, token, company, observer):
    server = start_server()
    path = f"/api/companies/{company.id}"
    assert set(_hammer(server.url, token, path, clients=8, requests_each=10)) == {200}  # warm-up
    before = observer.sessions_opened()
    statuses = _hammer(server.url, token, path, clients=8, requests_each=375)
    opened = observer.sessions_opened() - before
    assert len(statuses) == 3000 and set(statuses) == {200}
    assert opened <= BOUND, f"{opened} new sessions for 3,000 requests"


def test_64_concurrent_clients_stay_within_the_bound(start_server, token, company, observer):
    server = start_server()
    with PeakBackends(observer) as watch:
        statuses = _hammer(server.url, token, f"/api/companies/{company.id}", clients=64, requests_each=10)
    assert set(statuses) == {200}
    assert 0 < watch.peak <= BOUND
    assert observer.backends("idle in transaction") == []  # nothing left open once the load is over


def test_a_connection_older_than_conn_max_age_is_replaced(start_server, token, company, observer):
    server = start_server(DB_CONN_MAX_AGE="1", DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0")
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    assert client.get(f"/api/companies/{company.id}").status_code == 200
    first = {pid for pid, _ in observer.backends()}
    assert client.get(f"/api/companies/{company.id}").status_code == 200
    assert {pid for pid, _ in observer.backends()} == first  # young enough: reused
    time.sleep(1.5)
    assert client.get(f"/api/companies/{company.id}").status_code == 200
    second = {pid for pid, _ in observer.backends()}
    assert second and not (second & first)


def test_dead_connections_are_replaced_before_a_request_sees_them(start_server, token, company, observer):
    server = start_server()
    assert set(_hammer(server.url, token, f"/api/companies/{company.id}", clients=8, requests_each=5)) == {200}
    assert observer.terminate_all() > 0
    time.sleep(0.2)
    statuses = _hammer(server.url, token, f"/api/companies/{company.id}", clients=8, requests_each=5)
    assert set(statuses) == {200}


def test_waiting_longer_than_the_pool_timeout_is_a_503(start_server, token, company):
    server = start_server(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="1")
    headers = {"Authorization": f"Bearer {token}"}
    blocker = hold_lock_on_companies()
    try:
        with ThreadPoolExecutor(1) as pool:
            stuck = pool.submit(httpx.get, f"{server.url}/api/companies/{company.id}", headers=headers, timeout=30)
            time.sleep(0.5)  # the only worker is now waiting for the lock
            started = time.monotonic()
            waiting = httpx.get(f"{server.url}/api/companies/{company.id}", headers=headers, timeout=30)
            waited = time.monotonic() - started
            assert waiting.status_code == 503
            assert waiting.headers["Retry-After"]
            assert "detail" in waiting.json()
            assert waited < 3
            blocker.close()
            assert stuck.result().status_code == 200
    finally:
        blocker.close()


def test_sigterm_finishes_in_flight_requests_and_closes_every_connection(start_server, token, company, observer):
    server = start_server()
    headers = {"Authorization": f"Bearer {token}"}
    assert set(_hammer(server.url, token, f"/api/companies/{company.id}", clients=4, requests_each=5)) == {200}
    blocker = hold_lock_on_companies()
    try:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.get, f"{server.url}/api/companies/{company.id}", headers=headers, timeout=30)
            time.sleep(0.5)
            stopping = ThreadPoolExecutor(1).submit(server.terminate)
            time.sleep(0.5)
            blocker.close()
            assert in_flight.result().status_code == 200
            # After a graceful shutdown uvicorn (>= 0.29) re-raises the SIGTERM it caught, so a
            # process manager sees the usual "terminated by SIGTERM"; anything else is a failure.
            assert stopping.result() in (0, -signal.SIGTERM)
    finally:
        blocker.close()
    output = server.output()
    assert "Traceback" not in output
    assert "database connections closed" in output
    assert observer.backends() == []


def test_db_echo_logs_every_statement_with_debug_off(start_server, token, company):
    server = start_server(DB_ECHO="true", DJANGO_DEBUG="false")
    assert (
        httpx.get(f"{server.url}/api/companies/{company.id}", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    server.terminate()
    output = server.output()
    assert 'JOIN "arv_auth_apitoken"' in output  # the token lookup
    assert 'FROM "companies_company"' in output


def test_admin_pages_reuse_the_workers_connections(start_server, observer, superuser, company):
    server = start_server()
    with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
        log_in(browser)
        assert browser.get("/admin/companies/company/").status_code == 200  # warm
        before = observer.sessions_opened()
        for _ in range(50):
            assert browser.get("/admin/companies/company/").status_code == 200
        assert observer.sessions_opened() == before  # every page on a kept connection
    assert 0 < len(observer.backends()) <= BOUND
    assert observer.backends("idle in transaction") == []


def test_dbstatus_shows_the_bound_and_the_connections(settings):
    out = StringIO()
    call_command("dbstatus", stdout=out)
    text = out.getvalue()
    assert f"bound per server process: {settings.DATABASE_POOL.max_connections}" in text
    assert "connections open" in text and "idle in transaction: 0" in text


def test_verbose_health_shows_the_pool_to_staff(start_server, token):
    server = start_server()
    body = httpx.get(
        f"{server.url}/api/health", params={"verbose": 1}, headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert body["pool"]["max_connections"] == BOUND
    assert {"in_use", "idle", "waiting", "workers"} <= set(body["pool"])
    assert httpx.get(f"{server.url}/api/health", params={"verbose": 1}).status_code == 403


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster()
    yield cluster
    cluster.destroy()


@pytest.fixture
def server_on_cluster(cluster, start_server) -> tuple[UvicornProcess, str]:
    """ARV on a migrated database of the throwaway cluster, with a staff token (DB_CONNECT_TIMEOUT=2)."""
    url = cluster.url("arv_outage")
    cluster.create_database("arv_outage")
    manage(url, "migrate", "--noinput")
    token = manage(url, "create_api_token", "ops", "--staff").strip().splitlines()[-1]
    return start_server(database_url=url, DB_CONNECT_TIMEOUT="2"), token


def test_database_outage_is_503_quickly_and_recovers_without_restart(cluster, server_on_cluster):
    server, outage_token = server_on_cluster
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {outage_token}"}, timeout=30)
    assert client.get("/api/companies").status_code == 200

    cluster.stop()
    for path in ["/api/companies", "/api/storage/connections"]:
        started = time.monotonic()
        response = client.get(path)
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert "detail" in response.json()
        assert time.monotonic() - started < 2 + 1
    health = client.get("/api/health")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"

    cluster.start()
    statuses = [client.get("/api/companies").status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert client.get("/api/health").json() == {"status": "ok", "database": "ok"}


class BackgroundLoad:
    """8 clients sending GETs until stopped; each answer is filed under the phase it started in
    (or "fault" if the phase changed while it was in flight)."""

    def __init__(self, url: str, token: str, path: str, clients: int = 8) -> None:
        self.phase = "before"
        self.answers: list[tuple[str, int, float]] = []  # (phase, status, seconds)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(url, token, path), daemon=True) for _ in range(clients)
        ]

    def _client(self, url: str, token: str, path: str) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while not self._stop.is_set():
                phase, started = self.phase, time.monotonic()
                status = client.get(path).status_code
                self.answers.append((phase if self.phase == phase else "fault", status, time.monotonic() - started))

    def __enter__(self) -> BackgroundLoad:
        for thread in self._threads:
            thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def statuses(self, phase: str) -> list[int]:
        return [status for p, status, _ in self.answers if p == phase]


def test_a_database_restart_under_load_costs_quick_503s_and_nothing_after(cluster, server_on_cluster):
    server, restart_token = server_on_cluster
    with BackgroundLoad(server.url, restart_token, "/api/companies") as load:
        load.phase = "fault"
        cluster.stop()
        time.sleep(2)
        cluster.start()
        time.sleep(0.5)  # requests sent while it was starting may still see the outage
        load.phase = "after"
        time.sleep(2)
    assert load.statuses("before") and set(load.statuses("before")) == {200}
    assert 503 in load.statuses("fault") and set(load.statuses("fault")) <= {200, 503}
    assert all(seconds < 2 + 1 for phase, _, seconds in load.answers if phase == "fault")
    assert len(load.statuses("after")) > 10 and set(load.statuses("after")) == {200}


def test_connections_killed_under_load_fail_only_requests_in_flight(start_server, token, company, observer):
    server = start_server()
    with BackgroundLoad(server.url, token, f"/api/companies/{company.id}") as load:
        load.phase = "fault"
        assert observer.terminate_all() > 0
        time.sleep(0.3)
        load.phase = "after"
        time.sleep(2)
    assert set(load.statuses("before")) == {200}
    # A query cut off mid-flight is answered 503 (Retry-After); nothing else may fail.
    assert set(load.statuses("fault")) <= {200, 503}
    assert len(load.statuses("after")) > 10 and set(load.statuses("after")) == {200}


def test_the_bound_holds_per_worker_process(tmp_path, collected_static, token, company, observer):
    server = UvicornProcess(
        {"DATABASE_URL": current_database_url(), "ARV_STATIC_ROOT": str(collected_static), **SERVER_POOL},
        workers=2,
        log_path=tmp_path / "uvicorn.log",
    )
    try:
        with PeakBackends(observer) as watch:
            statuses = _hammer(server.url, token, f"/api/companies/{company.id}", clients=32, requests_each=10)
    finally:
        server.stop()
    assert set(statuses) == {200}
    assert 0 < watch.peak <= 2 * BOUND


def test_startup_warns_when_the_connection_budget_cannot_fit(start_server):
    # 3 processes x (150 + 0) connections cannot fit in PostgreSQL's max_connections (100 here).
    # The count is uvicorn's own --workers (each worker process reads it), no WEB_CONCURRENCY.
    server = start_server(uvicorn_args=("--workers", "3"), DB_POOL_SIZE="150", DB_MAX_OVERFLOW="0")
    server.terminate()
    output = server.output()
    assert "connection budget does not fit: 3 processes" in output
    assert "(arv.W101)" in output and "processes from uvicorn's --workers" in output


def test_startup_is_quiet_when_the_connection_budget_fits(start_server):
    server = start_server(uvicorn_args=("--workers", "2"))  # 2 x (4 + 2)
    server.terminate()
    assert "connection budget" not in server.output()

"""One pipeline for every request (arv.pipeline): the admin, Django's async ORM and every
failure under the same connection management, seen from a real uvicorn and PostgreSQL.

The servers serve ARV's URLs plus test-only views written as a contributor would
(testing.views, DJANGO_SETTINGS_MODULE=testing.settings).
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings
from django.db import connection

from arv.auth.tokens import token_issue
from arv.db.workers import GIL_SWITCH_INTERVAL
from arv.pipeline import GC_YOUNG_THRESHOLD
from companies.models import Company
from testing.admin import ADMIN_USERNAME, log_in
from testing.clusters import wait_for
from testing.postgres import PeakBackends

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="measures PostgreSQL sessions"),
]

TEST_VIEWS = {"DJANGO_SETTINGS_MODULE": "testing.settings"}
ONE_WORKER = {**TEST_VIEWS, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}
# Through PgBouncer (the CI's second pass) PostgreSQL's sessions are PgBouncer's, not ARV's.
watches_sessions = pytest.mark.skipif(settings.DATABASE_POOL.pgbouncer, reason="counts PostgreSQL's own sessions")


def _admin_browser(url: str) -> httpx.Client:
    """A logged-in admin session (the superuser's), as a person gets one."""
    browser = httpx.Client(base_url=url, follow_redirects=True, timeout=30)
    log_in(browser)
    return browser


@pytest.fixture
def token(django_user_model) -> str:
    return token_issue(user=django_user_model.objects.create_user("ops", is_staff=True))[1]


# -- Django's async ORM inside a request ---------------------------------------------------


@watches_sessions
def test_async_orm_in_a_view_runs_on_the_request_worker_in_its_transaction(start_server, observer):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/async-orm", params={"name": "Async Co"}, timeout=30)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    # acreate, aget, aupdate, async for, acount: one connection, one transaction, in an atomic block.
    assert body["before"]["pid"] == body["after"]["pid"]
    assert body["before"]["txid"] == body["after"]["txid"]
    assert body["before"]["in_atomic_block"] is True
    assert body["names"] == ["Async Co"] and body["count"] == 1
    assert [pid for pid, _ in observer.backends()] == [body["before"]["pid"]]  # the only worker's
    assert Company.objects.get(name="Async Co").notes == "updated in the same transaction"


@pytest.mark.parametrize("status", [400, 500])
def test_a_failing_async_orm_request_leaves_none_of_its_writes(start_server, status):
    server = start_server(**TEST_VIEWS)
    answer = httpx.get(f"{server.url}/api/test/async-orm", params={"name": "Gone Co", "status": status}, timeout=30)
    assert answer.status_code == status
    assert not Company.objects.filter(name="Gone Co").exists()


def test_the_orm_on_a_thread_of_its_own_is_refused_with_a_json_500(start_server, observer):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-worker", timeout=30)
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"detail": "Internal server error."}
    assert "not a database worker" in server.output()
    assert len(observer.backends()) <= 1  # the worker's (it checked the budget at start-up), no other


# -- the admin (sync views) ------------------------------------------------------------------


def test_a_failing_sync_request_leaves_none_of_its_writes(start_server):
    server = start_server(**TEST_VIEWS)
    failed = httpx.get(f"{server.url}/site-test/write-then-fail", params={"name": "Half Co", "fail": 1})
    assert failed.status_code == 500
    assert not Company.objects.filter(name="Half Co").exists()
    kept = httpx.get(f"{server.url}/site-test/write-then-fail", params={"name": "Whole Co"})
    assert kept.status_code == 200
    assert Company.objects.filter(name="Whole Co").exists()


@watches_sessions
def test_a_sync_request_runs_on_a_worker_within_the_bound_and_reuses_its_connection(start_server, observer):
    server = start_server(**ONE_WORKER)
    pids = {httpx.get(f"{server.url}/site-test/write-then-fail", params={"name": f"Co {n}"}).text for n in range(5)}
    assert len(pids) == 1
    assert [str(pid) for pid, _ in observer.backends()] == list(pids)


def test_an_admin_page_waiting_longer_than_the_pool_timeout_is_a_503(start_server, superuser):
    server = start_server(**ONE_WORKER, DB_POOL_TIMEOUT="1")
    browser = _admin_browser(server.url)
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(httpx.get, f"{server.url}/site-test/slow", params={"seconds": 4}, timeout=30)
        time.sleep(0.5)  # the only worker now sleeps in that view
        started = time.monotonic()
        page = browser.get("/admin/companies/company/")
        assert page.status_code == 503
        assert page.headers["Retry-After"]
        assert time.monotonic() - started < 3
        assert busy.result().status_code == 200
    assert browser.get("/admin/companies/company/").status_code == 200
    browser.close()


@watches_sessions
def test_wrong_password_logins_wait_for_a_worker_instead_of_opening_connections(start_server, observer, superuser):
    # Every attempt hashes a password (no lockout or slow-down here: test_admin_login_throttling covers them) and
    # records the failure; 12 of them on 3 workers of a loaded machine may wait more than 5 s.
    server = start_server(
        **TEST_VIEWS,
        DB_POOL_SIZE="2",
        DB_MAX_OVERFLOW="1",
        DB_POOL_TIMEOUT="30",
        ARV_LOGIN_FAILURE_LIMIT="100",
        ARV_LOGIN_SLOWDOWN_SECONDS="0",  # every attempt goes straight to the workers
    )

    def wrong_login(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as browser:
            browser.get("/admin/login/")
            return browser.post(
                "/admin/login/",
                data={
                    "username": ADMIN_USERNAME,
                    "password": "wrong",
                    "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                },
            ).status_code

    with PeakBackends(observer) as watch, ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(wrong_login, range(12)))
    assert statuses == [200] * 12  # the login form again, with its error
    assert 0 < watch.peak <= 3


@watches_sessions
def test_mixed_admin_api_and_health_load_stays_within_the_bound(start_server, observer, superuser, token, make_company):
    bound = 4
    company = make_company("Mixed Co")
    server = start_server(**TEST_VIEWS, DB_POOL_SIZE="3", DB_MAX_OVERFLOW="1", DB_POOL_TIMEOUT="30")
    browsers = [_admin_browser(server.url) for _ in range(8)]

    def admin(n: int) -> list[int]:
        browser = browsers[n % len(browsers)]
        return [browser.get(f"/admin/companies/company/{company.id}/change/").status_code for _ in range(5)]

    def api(_: int) -> list[int]:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            return [client.get(f"/api/companies/{company.id}").status_code for _ in range(10)]

    def health(_: int) -> list[int]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            return [client.get("/api/health").status_code for _ in range(10)]

    before = observer.sessions_opened()
    with PeakBackends(observer) as watch, ThreadPoolExecutor(40) as pool:
        jobs = [pool.submit(kind, n) for n in range(16) for kind in (admin, api)] + [
            pool.submit(health, n) for n in range(8)
        ]
        statuses = [status for job in jobs for status in job.result()]
    assert len(statuses) == 16 * 5 + 16 * 10 + 8 * 10
    assert set(statuses) == {200}
    assert 0 < watch.peak <= bound
    assert observer.sessions_opened() - before <= bound
    assert "not a database worker" not in server.output()
    for browser in browsers:
        browser.close()


def test_no_request_gets_a_thread_of_its_own(start_server, superuser, token, make_company):
    company = make_company("Threads Co")
    server = start_server(**TEST_VIEWS, DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0")
    browser = _admin_browser(server.url)
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def threads() -> list[str]:
        return api.get("/api/test/threads").json()["threads"]

    for _ in range(3):  # warm: a worker started, a 4xx logged
        assert browser.get("/admin/companies/company/").status_code == 200
        assert api.get(f"/api/companies/{company.id}").status_code == 200
        assert api.get("/api/companies/999999").status_code == 404  # a 4xx is logged on a thread pool
    # The pool keeper's warm-up has opened the pool's workers (within DB_WARMUP_SECONDS): from
    # here on, any new thread is one a request made.
    wait_for(lambda: api.get("/api/health/ready").status_code == 200, "the pool to be warm")
    before = threads()
    for n in range(20):
        assert browser.get(f"/admin/companies/company/{company.id}/change/").status_code == 200
        assert api.get(f"/api/companies/{company.id}").status_code == 200
        assert api.get("/api/test/async-orm", params={"name": f"Thread {n}"}).status_code == 201
    assert threads() == before
    assert 1 <= sum(name.startswith("arv-db-") for name in before) <= 2  # the workers, within the bound
    browser.close()
    api.close()


def test_the_server_process_tunes_the_interpreter_at_start_up(start_server):
    # What start-up loaded is frozen out of the cyclic GC, young collections are rarer, and a
    # thread holds the GIL longer between forced switches (arv.pipeline, arv.db.workers).
    server = start_server(**TEST_VIEWS)
    tuned = httpx.get(f"{server.url}/api/test/interpreter", timeout=30).json()
    # Python's own are 700 and 5 ms (not this process's: a test server in it has tuned it too).
    assert tuned["gc_threshold"][0] == GC_YOUNG_THRESHOLD != 700
    assert tuned["gc_frozen"] > 10_000
    assert tuned["switch_interval"] == pytest.approx(GIL_SWITCH_INTERVAL) != 0.005


# -- deadlocks, faults, clients that leave ----------------------------------------------------


@pytest.mark.parametrize("path", ["/site-test/lock-pair", "/api/test/lock-pair"])
def test_a_deadlocked_request_is_run_once_more_and_succeeds(start_server, make_company, path):
    make_company("A", slug="a")
    make_company("B", slug="b")
    server = start_server(**TEST_VIEWS)
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(httpx.get, server.url + path, params={"first": "a", "second": "b"}, timeout=30)
        other = pool.submit(httpx.get, server.url + path, params={"first": "b", "second": "a"}, timeout=30)
        statuses = [one.result().status_code, other.result().status_code]
    assert statuses == [200, 200]
    assert "DeadlockDetected, running it once more" in server.output()


@pytest.mark.parametrize("path", ["/site-test/lock-pair", "/api/test/lock-pair"])
def test_a_deadlocked_request_that_acted_outside_the_database_is_a_409(start_server, make_company, path):
    make_company("A", slug="a")
    make_company("B", slug="b")
    server = start_server(**TEST_VIEWS)
    params = {"outside": 1}
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(httpx.get, server.url + path, params={**params, "first": "a", "second": "b"}, timeout=30)
        other = pool.submit(httpx.get, server.url + path, params={**params, "first": "b", "second": "a"}, timeout=30)
        answers = [one.result(), other.result()]
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    if path.startswith("/api/"):
        assert next(a for a in answers if a.status_code == 409).json()["detail"]
    assert "running it once more" not in server.output()


def test_a_database_fault_is_a_json_500_with_its_traceback_in_the_log(start_server):
    server = start_server(**TEST_VIEWS)
    answer = httpx.get(f"{server.url}/api/test/broken-query", timeout=30)
    assert answer.status_code == 500
    assert answer.json() == {"detail": "Internal server error."}
    assert "Retry-After" not in answer.headers
    output = server.output()
    assert "Traceback" in output and "no_such_column" in output


@pytest.mark.parametrize("path", ["/site-test/write-then-fail", "/api/test/async-orm"])
def test_a_client_that_leaves_while_waiting_for_a_worker_is_not_run(start_server, path):
    server = start_server(**ONE_WORKER, DB_POOL_TIMEOUT="10")
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(httpx.get, f"{server.url}/site-test/slow", params={"seconds": 2}, timeout=30)
        time.sleep(0.5)  # the only worker is busy: the next request waits in line
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"GET {path}?name=Left+Co HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            time.sleep(0.5)
        assert busy.result().status_code == 200
    assert httpx.get(f"{server.url}/api/health").status_code == 200  # the worker is free again
    time.sleep(0.5)
    assert not Company.objects.filter(name="Left Co").exists()

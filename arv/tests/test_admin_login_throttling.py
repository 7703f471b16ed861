"""Admin logins are throttled: each failure for a username, or from an address, doubles the
wait before its next login (arv.auth.slowdown), with no database worker held meanwhile; after 5
failures (django-axes) logins are refused with a clear message, even with the right password,
until the cool-off has passed; a successful login resets the count; API tokens are not affected.

Logins go through the admin's login form over real HTTP. The client's address is the one
uvicorn takes from X-Forwarded-For, which it trusts from 127.0.0.1 (--forwarded-allow-ips),
as behind a local reverse proxy.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from testing.admin import ADMIN_PASSWORD, ADMIN_USERNAME, parse_page

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 5  # ARV_LOGIN_FAILURE_LIMIT's default
LOCKED = "Too many failed logins"


def _log_in(url: str, username: str, password: str, address: str) -> httpx.Response:
    """One login through the form, from `address`, in a fresh browser."""
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": address}, timeout=30) as browser:
        form = parse_page(browser.get("/admin/login/", params={"next": "/admin/"}).text).forms["login-form"]
        data = {**dict(form["fields"]), "username": username, "password": password}
        return browser.post(form["action"], data=data, follow_redirects=False)


def _fail(url: str, times: int, *, username: str = ADMIN_USERNAME, addresses: list[str]) -> list[int]:
    return [_log_in(url, username, "wrong", addresses[i % len(addresses)]).status_code for i in range(times)]


def test_failures_for_one_username_lock_it_out_even_with_the_right_password(live_url, superuser, django_user_model):
    django_user_model.objects.create_superuser("other", password=ADMIN_PASSWORD)
    statuses = _fail(live_url, LIMIT, addresses=[f"10.0.1.{i}" for i in range(LIMIT)])  # a different address each
    assert statuses == [200] * (LIMIT - 1) + [429]

    refused = _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.1.99")
    assert refused.status_code == 429
    assert LOCKED in refused.text and "for this account" in refused.text
    assert "sessionid" not in refused.cookies
    # Another account, from any address, is not affected.
    assert _log_in(live_url, "other", ADMIN_PASSWORD, "10.0.1.0").status_code == 302


def test_failures_from_one_address_lock_it_out(live_url, superuser):
    statuses = [_log_in(live_url, f"nobody-{i}", "wrong", "10.0.2.1").status_code for i in range(LIMIT)]
    assert statuses[-1] == 429
    refused = _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.2.1")
    assert refused.status_code == 429 and LOCKED in refused.text
    # The same account from another address logs in.
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.2.2").status_code == 302


def test_a_successful_login_resets_the_count(live_url, superuser):
    addresses = ["10.0.3.1"]
    assert _fail(live_url, LIMIT - 1, addresses=addresses) == [200] * (LIMIT - 1)
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.3.1").status_code == 302
    assert _fail(live_url, LIMIT - 1, addresses=addresses) == [200] * (LIMIT - 1)
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.3.1").status_code == 302


def test_api_tokens_work_while_their_owner_is_locked_out(live_url, superuser):
    _fail(live_url, LIMIT, addresses=["10.0.4.1"])
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.4.2").status_code == 429
    _, token = token_issue(user=superuser)
    answer = httpx.get(f"{live_url}/api/companies", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
def test_the_lock_lifts_after_the_cool_off(start_server, superuser):
    server = start_server(ARV_LOGIN_COOLOFF_SECONDS="2", ARV_LOGIN_FAILURE_LIMIT="2")
    assert _fail(server.url, 2, addresses=["10.0.5.1"]) == [200, 429]
    assert _log_in(server.url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.5.2").status_code == 429
    time.sleep(2.5)
    assert _log_in(server.url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.5.2").status_code == 302


def _timed_log_in(url: str, username: str, password: str, address: str) -> tuple[int, float]:
    started = time.monotonic()
    status = _log_in(url, username, password, address).status_code
    return status, time.monotonic() - started


def test_each_failure_doubles_the_wait_before_the_next_login(live_url, superuser):
    # ARV_LOGIN_SLOWDOWN_SECONDS' default: 0.25 s after one failure, 0.5 s after two, 1 s after three.
    for address, at_least in [("10.0.6.1", 0), ("10.0.6.2", 0.25), ("10.0.6.3", 0.5), ("10.0.6.4", 1.0)]:
        status, took = _timed_log_in(live_url, ADMIN_USERNAME, "wrong", address)  # the username's failures count
        assert status == 200 and took >= at_least
    # From an address with failures of its own, any username waits too; the right password still logs in.
    _fail(live_url, 3, username="nobody", addresses=["10.0.6.9"])
    status, took = _timed_log_in(live_url, "other-user", "wrong", "10.0.6.9")
    assert status == 200 and took >= 1.0
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.7.1").status_code == 302


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
def test_a_slowed_login_holds_no_database_worker(start_server, superuser):
    # One worker, and a wait long enough to see: the API is answered while the login waits.
    _, token = token_issue(user=superuser)
    server = start_server(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", ARV_LOGIN_SLOWDOWN_SECONDS="3")
    assert _fail(server.url, 1, addresses=["10.0.8.1"]) == [200]
    finished: list[str] = []

    def slowed_login() -> None:
        _log_in(server.url, ADMIN_USERNAME, "wrong", "10.0.8.1")  # waits 3 s before it is served
        finished.append("login")

    login = threading.Thread(target=slowed_login)
    login.start()
    time.sleep(1)
    answer = httpx.get(f"{server.url}/api/companies", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    finished.append("api")
    login.join()
    assert answer.status_code == 200
    assert finished == ["api", "login"]

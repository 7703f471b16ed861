"""Admin logins are throttled: each failure for a username, or from an address, doubles the
wait before its next login (arv.auth.slowdown), with no database worker held meanwhile; after 5
failures of one username from one address (django-axes) that pair is refused with a clear
message, even with the right password, until the cool-off has passed since the failure that
locked it; a successful login resets the count; API tokens are not affected. Concurrent
guesses get no more than the limit; `manage.py axes_reset` lifts the lock and the slow-down.

Logins go through the admin's login form over real HTTP. The client's address is the one
uvicorn takes from X-Forwarded-For, which it trusts from 127.0.0.1 (--forwarded-allow-ips),
as behind a local reverse proxy.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
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


def test_failures_of_one_username_from_one_address_lock_that_pair_out(live_url, superuser, django_user_model):
    django_user_model.objects.create_superuser("other", password=ADMIN_PASSWORD)
    assert _fail(live_url, LIMIT, addresses=["10.0.1.1"]) == [200] * (LIMIT - 1) + [429]

    refused = _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.1.1")
    assert refused.status_code == 429
    assert LOCKED in refused.text and "for this account from this address" in refused.text
    assert "sessionid" not in refused.cookies
    # The same account from another address, and another account from that address, log in.
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.1.2").status_code == 302
    assert _log_in(live_url, "other", ADMIN_PASSWORD, "10.0.1.1").status_code == 302


def test_an_outsider_cannot_lock_an_admin_out(live_url, superuser):
    """Failures for the admin's username from other addresses slow its logins down, never lock it out."""
    assert _fail(live_url, LIMIT + 1, addresses=[f"10.0.2.{i}" for i in range(LIMIT + 1)]) == [200] * (LIMIT + 1)
    assert _fail(live_url, LIMIT, addresses=["10.0.2.100"])[-1] == 429  # even a locked-out pair locks only itself
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.2.200").status_code == 302


def test_failures_from_one_address_lock_out_no_other_username(live_url, superuser):
    statuses = [_log_in(live_url, f"nobody-{i}", "wrong", "10.0.2.1").status_code for i in range(LIMIT + 1)]
    assert statuses == [200] * (LIMIT + 1)
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.2.1").status_code == 302


def test_a_successful_login_resets_the_count(live_url, superuser):
    addresses = ["10.0.3.1"]
    assert _fail(live_url, LIMIT - 1, addresses=addresses) == [200] * (LIMIT - 1)
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.3.1").status_code == 302
    assert _fail(live_url, LIMIT - 1, addresses=addresses) == [200] * (LIMIT - 1)
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.3.1").status_code == 302


def test_api_tokens_work_while_their_owner_is_locked_out(live_url, superuser):
    _fail(live_url, LIMIT, addresses=["10.0.4.1"])
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.4.1").status_code == 429
    _, token = token_issue(user=superuser)
    answer = httpx.get(f"{live_url}/api/companies", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
def test_the_lock_lifts_after_the_cool_off(start_server, superuser):
    server = start_server(ARV_LOGIN_COOLOFF_SECONDS="2", ARV_LOGIN_FAILURE_LIMIT="2")
    assert _fail(server.url, 2, addresses=["10.0.5.1"]) == [200, 429]
    assert _log_in(server.url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.5.1").status_code == 429
    time.sleep(2.5)
    assert _log_in(server.url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.5.1").status_code == 302


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
def test_failures_during_a_lockout_do_not_extend_it(start_server, superuser):
    server = start_server(ARV_LOGIN_COOLOFF_SECONDS="6", ARV_LOGIN_FAILURE_LIMIT="2", ARV_LOGIN_SLOWDOWN_SECONDS="0")
    assert _fail(server.url, 2, addresses=["10.0.5.1"]) == [200, 429]
    locked_at = time.monotonic()
    tried = 0
    while time.monotonic() < locked_at + 4 or not tried:  # a guesser goes on during the lockout
        assert _fail(server.url, 1, addresses=["10.0.5.1"]) == [429]
        tried += 1
    time.sleep(max(0.0, locked_at + 6.5 - time.monotonic()))  # the cool-off counts from the locking failure
    assert _log_in(server.url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.5.1").status_code == 302


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


def test_concurrent_guesses_get_no_more_than_the_limit(live_url, superuser):
    """The burst is sent together: each attempt is counted before the next one's password is
    hashed (arv.auth.handlers), so the limit holds and the right password after it is refused."""
    address, burst = "10.0.9.1", LIMIT + 2
    forms = []
    for _ in range(burst):  # each guesser's own login page and CSRF cookie, fetched beforehand
        browser = httpx.Client(base_url=live_url, headers={"X-Forwarded-For": address}, timeout=60)
        form = parse_page(browser.get("/admin/login/").text).forms["login-form"]
        forms.append((browser, form["action"], {**dict(form["fields"]), "username": ADMIN_USERNAME, "password": "x"}))
    start = threading.Barrier(burst)

    def guess(browser: httpx.Client, action: str, data: dict) -> int:
        try:
            start.wait()
            return browser.post(action, data=data).status_code
        finally:
            browser.close()

    with ThreadPoolExecutor(burst) as pool:
        statuses = sorted(pool.map(lambda f: guess(*f), forms))

    assert statuses == [200] * (LIMIT - 1) + [429] * (burst - LIMIT + 1)
    assert sum(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == LIMIT
    assert _log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, address).status_code == 429


def test_axes_reset_lifts_the_lock_and_the_slow_down(live_url, superuser, settings):
    settings.LOGIN_SLOWDOWN_SECONDS = 6.0  # one failure: the next login would wait 6 s
    assert _fail(live_url, LIMIT, addresses=["10.0.10.1"])[-1] == 429
    call_command("axes_reset")
    status, took = _timed_log_in(live_url, ADMIN_USERNAME, ADMIN_PASSWORD, "10.0.10.1")
    assert status == 302
    assert took < 6.0, "the slow-down outlived axes_reset"


def test_failures_during_a_lockout_store_nothing_more(live_url, superuser):
    """django-axes keeps up to 1 KB of each failure's form: only until the pair is locked out."""
    _fail(live_url, LIMIT, addresses=["10.0.11.1"])
    (stored,) = AccessAttempt.objects.values_list("post_data", flat=True)
    with httpx.Client(base_url=live_url, headers={"X-Forwarded-For": "10.0.11.1"}, timeout=30) as browser:
        form = parse_page(browser.get("/admin/login/").text).forms["login-form"]
        data = {**dict(form["fields"]), "username": ADMIN_USERNAME, "password": "x", "junk": "j" * 2000}
        assert [browser.post(form["action"], data=data).status_code for _ in range(5)] == [429] * 5
    assert AccessAttempt.objects.values_list("post_data", flat=True).get() == stored


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (
            "&".join(f"f{i}=v" for i in range(1001)),
            "application/x-www-form-urlencoded",
        ),  # > DATA_UPLOAD_MAX_NUMBER_FIELDS
        ("--x\r\nContent-Disposition: form-data; name=username\r\n\r\nroot\r\n--x--\r\n", "multipart/form-data"),
    ],
    ids=["too many fields", "multipart without a boundary"],
)
def test_an_unreadable_login_form_is_a_400_page(start_server, content, content_type):
    from arv.tests.test_metrics import METRICS_TOKEN, scrape, value

    server = start_server(ARV_METRICS_TOKEN=METRICS_TOKEN)
    answer = httpx.post(f"{server.url}/admin/login/", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == 400
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])
    assert "Internal Server Error" not in answer.text
    requests = scrape(server.url)["arv_http_requests"]
    assert value(requests, "arv_http_requests_total", method="POST", route="/admin/login/", status="400") == 1

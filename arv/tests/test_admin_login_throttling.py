"""Admin logins are throttled (django-axes): after 5 failures for one username, or from one
address, logins are refused with a clear message, even with the right password, until the
cool-off has passed; a successful login resets the count; API tokens are not affected.

Logins go through the admin's login form over real HTTP. The client's address is the one
uvicorn takes from X-Forwarded-For, which it trusts from 127.0.0.1 (--forwarded-allow-ips),
as behind a local reverse proxy.
"""

from __future__ import annotations

import time

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from arv.testing.admin import ADMIN_PASSWORD, ADMIN_USERNAME, parse_page

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

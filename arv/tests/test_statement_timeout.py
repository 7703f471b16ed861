"""DB_STATEMENT_TIMEOUT: a runaway query is cut off, answered 503, and leaves nothing behind."""

from __future__ import annotations

import time

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from testing.postgres import hold_lock_on_companies

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statement_timeout"),
]


def test_a_runaway_query_is_cut_off_and_the_connection_is_reused(
    start_server, observer, make_company, django_user_model
):
    company = make_company("Slow Co")
    token = token_issue(user=django_user_model.objects.create_user("ops", is_staff=True))[1]
    # One worker only: if the timed-out request left it stuck, the next request could not be served.
    server = start_server(DB_STATEMENT_TIMEOUT="500", DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0")
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    path = f"/api/companies/{company.id}"
    assert client.get(path).status_code == 200

    blocker = hold_lock_on_companies()  # the detail query now waits for the lock: a runaway
    try:
        started = time.monotonic()
        response = client.get(path)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
        assert "detail" in response.json()
        assert elapsed < 2, f"answered after {elapsed:.1f} s"
        # Cut off in PostgreSQL too, while the lock is still held: nothing of ARV's waits or stays open.
        assert observer.backends("active") == []
        assert observer.backends("idle in transaction") == []
    finally:
        blocker.close()

    assert client.get(path).status_code == 200
    assert observer.backends("idle in transaction") == []
    assert len(observer.backends()) == 1  # the single worker's connection, and no other
    client.close()

"""An API token created in the admin: shown once, in the answer to the POST that made it; never
in a cookie, a cache, the session table or the SQL log."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from django.db import connection

from arv.auth.models import ApiToken
from arv.auth.tokens import token_user
from testing.admin import log_in, parse_page

pytestmark = pytest.mark.django_db(transaction=True)

ADD_PATH = "/admin/arv_auth/apitoken/add/"


def _create_token(admin: httpx.Client, user_id: int) -> httpx.Response:
    form = parse_page(admin.get(ADD_PATH).text).forms["apitoken_form"]
    data = {**dict(form["fields"]), "user": str(user_id), "name": "deploy bot"}
    return admin.post(ADD_PATH, data=data, follow_redirects=False)


def test_a_new_token_is_shown_once_in_the_uncached_answer_to_its_post(admin, superuser):
    created = _create_token(admin, superuser.pk)
    token = ApiToken.objects.get(name="deploy bot")
    assert created.status_code == 200
    assert "no-store" in created.headers["Cache-Control"]
    secret = re.search(r'id="api-token"[^>]*value="([^"]+)"', created.text).group(1)
    assert token_user(secret) == superuser  # the real token, for the user the form named
    assert secret.startswith(f"arv_{token.key_id}_")
    private = secret.removeprefix(f"arv_{token.key_id}_")

    # Never through a cookie (messages are signed, not encrypted) or a header.
    assert secret not in str(created.headers)
    assert private not in str(created.headers)
    assert all(secret not in value for value in admin.cookies.values())
    # Nor anywhere else to read it again: the token list and its page show the key id only.
    for path in ("/admin/arv_auth/apitoken/", f"/admin/arv_auth/apitoken/{token.pk}/change/"):
        assert private not in admin.get(path).text


def test_the_new_tokens_secret_is_stored_nowhere_readable(admin, superuser):
    """Sessions are signed, not encrypted: no session row may hold the secret, in any form."""
    from django.contrib.sessions.models import Session

    created = _create_token(admin, superuser.pk)
    secret = re.search(r'id="api-token"[^>]*value="([^"]+)"', created.text).group(1)
    private = secret.removeprefix(f"arv_{ApiToken.objects.get().key_id}_")
    sessions = list(Session.objects.all())
    assert sessions  # the admin's own login session
    for session in sessions:
        decoded = json.dumps(session.get_decoded())
        assert private not in decoded
        assert private not in session.session_data


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
def test_db_echo_writes_no_session_data(start_server, superuser):
    from django.contrib.sessions.models import Session

    server = start_server(DB_ECHO="true")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        log_in(browser)
        assert browser.get("/admin/").status_code == 200  # reads the session
    server.stop()
    (session,) = Session.objects.all()
    output = server.output()
    assert "django_session" in output  # the session's SQL is logged ...
    assert session.session_data not in output  # ... without its data
    assert session.session_data[:16] not in output

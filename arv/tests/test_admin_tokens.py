"""An API token created in the admin: shown once, on its own page, never in a cookie or a cache."""

from __future__ import annotations

import re

import httpx
import pytest

from arv.auth.models import ApiToken
from arv.auth.tokens import token_user
from testing.admin import parse_page

pytestmark = pytest.mark.django_db(transaction=True)

ADD_PATH = "/admin/arv_auth/apitoken/add/"


def _create_token(admin: httpx.Client, user_id: int) -> httpx.Response:
    form = parse_page(admin.get(ADD_PATH).text).forms["apitoken_form"]
    data = {**dict(form["fields"]), "user": str(user_id), "name": "deploy bot"}
    return admin.post(ADD_PATH, data=data, follow_redirects=False)


def test_a_new_token_is_shown_once_on_its_own_uncached_page(admin, superuser):
    created = _create_token(admin, superuser.pk)
    token = ApiToken.objects.get(name="deploy bot")
    assert created.status_code == 302
    assert created.headers["Location"] == f"/admin/arv_auth/apitoken/{token.pk}/created/"

    page = admin.get(created.headers["Location"])
    assert page.status_code == 200
    assert "no-store" in page.headers["Cache-Control"]
    secret = re.search(r'id="api-token"[^>]*value="([^"]+)"', page.text).group(1)
    assert token_user(secret) == superuser  # the real token, for the user the form named
    assert secret.startswith(f"arv_{token.key_id}_")

    # Never through a cookie (messages are signed, not encrypted) or a header.
    for answer in (created, page):
        assert secret not in str(answer.headers)
        assert secret.split("_")[-1] not in str(answer.headers)
    assert all(secret not in value for value in admin.cookies.values())

    again = admin.get(created.headers["Location"])  # a reload
    assert again.status_code == 302
    changelist = admin.get(again.headers["Location"])
    assert secret not in changelist.text
    assert f"The secret of token {token.key_id} was shown once" in changelist.text


def test_the_page_shows_nothing_for_another_token(admin, superuser, django_user_model):
    first = _create_token(admin, superuser.pk)
    other = ApiToken.objects.create(key_id="0123456789abcdef", secret_hash="x", user=superuser, name="older")
    answer = admin.get(f"/admin/arv_auth/apitoken/{other.pk}/created/")
    assert answer.status_code == 302  # the waiting secret is not the older token's
    assert admin.get(first.headers["Location"]).status_code == 302  # and is gone: asked for once

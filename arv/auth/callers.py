"""Who is calling the API: bearer token or the admin's session cookie (with CSRF).

Authentication runs inside the request's unit of work (arv.db.transaction), on
the same connection and transaction as the view that follows.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from arv.auth.tokens import token_user
from arv.db.transaction import run_db

# Set on the user an admin session authenticated: such a caller is an operator and gets what
# Django's model permissions give it (companies.access); a bearer token's user is staff or a member.
_BY_SESSION = "arv_by_session"


def by_session(user: AbstractBaseUser) -> bool:
    """Whether this caller came with the admin's session cookie (not a bearer token)."""
    return getattr(user, _BY_SESSION, False)


class BearerToken(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        return await run_db(token_user, token)


def _session_user(request: HttpRequest, session_key: str) -> AbstractBaseUser | None:
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(session_key)
    user = get_user(request)
    if not (user.is_authenticated and user.is_active):
        return None
    setattr(user, _BY_SESSION, True)
    return user


class SessionCookie(APIKeyCookie):
    """The admin's login session. ninja checks CSRF for unsafe methods (csrf=True)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        # No session cookie: not a session caller at all (401, not a CSRF 403).
        if not request.COOKIES.get(self.param_name):
            return None
        return super()._get_key(request)

    async def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not key or "\x00" in key:
            return None
        return await run_db(_session_user, request, key)


api_auth = [BearerToken(), SessionCookie()]

"""Who is calling the API: bearer token or the admin's session cookie (with CSRF).

Authentication runs inside the request's unit of work (arv.db.transaction), on
the same connection and transaction as the view that follows. A bearer token's
lookup costs no trip to the database worker of its own: it runs first in the
request's first trip (UnitOfWork.before_next_trip), before the view's work, and
the view sees a caller that is resolved by then (DeferredCaller). A refused token
stops that trip before the view's work runs (401, rolled back); a request that
answers without any trip (a 422 before the view, say) has its token looked up
before the answer stands (settle_caller), so a bad token is 401 as it always was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject
from ninja.errors import AuthenticationError
from ninja.security import APIKeyCookie, HttpBearer

from arv.auth.tokens import token_user, token_user_read
from arv.db.transaction import current_unit, run_db
from arv.web import error_answers


class TokenLookup:
    """A bearer token's owner, looked up first in the request's first database trip."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.done = False
        self.user: AbstractBaseUser | None = None

    def __call__(self) -> None:  # on the worker, in the request's transaction
        self.found(token_user(self.token))

    async def on_loop(self, read: Callable[..., Awaitable[list[Any]]]) -> None:  # arv.db.on_loop
        self.found(await token_user_read(self.token, read))

    def found(self, user: AbstractBaseUser | None) -> None:
        self.user = user
        self.done = True
        if user is None:
            raise AuthenticationError()

    def caller(self) -> AbstractBaseUser:
        if not self.done:
            raise RuntimeError("the bearer token's caller is known inside run_db()/finish_db() only")
        if self.user is None:
            raise AuthenticationError()
        return self.user


class DeferredCaller(SimpleLazyObject):
    """request.auth for a bearer token: the user its lookup found (TokenLookup.caller).

    Truthy without a lookup (ninja asks, on the event loop): a request it does not
    belong to never gets past its first trip, or past settle_caller.
    """

    def __bool__(self) -> bool:
        return True


# Set on the user an admin session authenticated: such a caller is an operator and gets what
# Django's model permissions give it (companies.access); a bearer token's user is staff or a member.
_BY_SESSION = "arv_by_session"


def by_session(user: AbstractBaseUser) -> bool:
    """Whether this caller came with the admin's session cookie (not a bearer token)."""
    return getattr(user, _BY_SESSION, False)


class BearerToken(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str) -> AbstractBaseUser | None:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            # A refused token leaves the session cookie to try (ninja's next auth): known now.
            return await run_db(token_user, token)
        lookup = TokenLookup(token)
        current_unit().before_next_trip(lookup)
        request.arv_token_lookup = lookup
        return DeferredCaller(lookup.caller)


async def settle_caller(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """The answer to an API request, once its bearer token (if any) is known to be good: a
    request that made no database trip looks it up now; a refused token is 401 whatever
    the view answered."""
    lookup: TokenLookup | None = getattr(request, "arv_token_lookup", None)
    if lookup is None:
        return response
    if not lookup.done:
        if response.status_code >= 500 or current_unit().failure is not None:
            # A trip failed before the lookup ran (an outage, no free worker in time): the
            # view's work never ran either, and its error answer (503, ...) stands; no other
            # answer does. (A trip now would wait for the same outage a second time.)
            return response if response.status_code >= 400 else error_answers.unauthenticated()
        try:
            await run_db(_nothing)  # the lookup runs first in this trip
        except AuthenticationError:
            pass
    return response if lookup.user is not None else error_answers.unauthenticated()


def _nothing() -> None:
    pass


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

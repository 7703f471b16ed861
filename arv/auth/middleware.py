"""Admin login throttling (django-axes) inside ARV's unit of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

from arv.db.transaction import keep_writes


@sync_and_async_middleware  # async too: the admin's async views run Django's async stack
def keep_lockout_writes(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """Commit the request that django-axes answered with its lockout (429).

    ARV rolls a request back when its answer is 400 or more; the failed attempt that
    caused the lockout (and the cool-off a retry during it restarts) must stay recorded,
    or the right password would pass on the next try. Sits just before AxesMiddleware.
    """

    def kept(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(request, "axes_locked_out", False):
            keep_writes(response)
        return response

    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            return kept(request, await get_response(request))

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        return kept(request, get_response(request))

    return middleware

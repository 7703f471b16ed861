"""Admin login throttling (django-axes) inside ARV's unit of work."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from arv.db.transaction import keep_writes


def keep_lockout_writes(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Commit the request that django-axes answered with its lockout (429).

    ARV rolls a request back when its answer is 400 or more; the failed attempt that
    caused the lockout (and the cool-off a retry during it restarts) must stay recorded,
    or the right password would pass on the next try. Sits just before AxesMiddleware.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if getattr(request, "axes_locked_out", False):
            keep_writes(response)
        return response

    return middleware

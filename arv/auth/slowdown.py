"""Failed admin logins slow the next attempts down, before django-axes refuses them outright.

After n recent failures for a username, or from an address (whichever has more), the next
login form POST for it waits ARV_LOGIN_SLOWDOWN_SECONDS x 2**(n-1), at most
MAX_DELAY_SECONDS, on the event loop (Pipeline.http): a guesser is slowed down, and no
worker or connection is held while it waits. The counts are django-axes' own records
(AccessAttempt, in the database: every server process sees the same), read in a short trip
to a database worker of their own before the wait: what resets the lockout (a successful
login, `manage.py axes_reset`, the cool-off) resets the slow-down too.

A login form that cannot be read (too many fields, a broken multipart body) is answered 400
here, as Django answers it anywhere else, rather than failing on the event loop.
"""

from __future__ import annotations

import asyncio
import functools

from axes.models import AccessAttempt
from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.handlers.exception import response_for_exception
from django.db.models import Q, Sum
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.utils import timezone

from arv.db.errors import DATABASE_ERRORS
from arv.db.transaction import UnitOfWork
from arv.db.workers import get_pool

MAX_DELAY_SECONDS = 8.0

LOGIN_VIEW = "admin:login"

# What Django raises for a form it cannot read; its handler answers each with a 400.
UNREADABLE_FORM = (SuspiciousOperation, MultiPartParserError, BadRequest)


async def before_login(request: HttpRequest) -> HttpResponse | None:
    """For a login form POST: wait as long as its failures ask, or answer 400 if it cannot be
    read. None: serve the request as usual."""
    if request.method != "POST" or not _is_login(request):
        return None
    try:
        request.body  # noqa: B018 -- read first, so that the view can still read the body after POST
        username = request.POST.get(settings.AXES_USERNAME_FORM_FIELD, "")
    except UNREADABLE_FORM as exc:
        return response_for_exception(request, exc)
    if delay := delay_after(await _recent_failures(username, request.META.get("REMOTE_ADDR", ""))):
        await asyncio.sleep(delay)
    return None


def delay_after(failures: int) -> float:
    base = settings.LOGIN_SLOWDOWN_SECONDS
    return min(base * 2 ** (failures - 1), MAX_DELAY_SECONDS) if failures and base else 0.0


def recent_failures(username: str, address: str) -> int:
    """Failures within the cool-off for `username` (from any address) or from `address` (for
    any username), whichever has more."""
    by_username, by_address = Q(username=username), Q(ip_address=address or None)
    totals = AccessAttempt.objects.filter(
        by_username | by_address, attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME
    ).aggregate(
        username=Sum("failures_since_start", filter=by_username),
        address=Sum("failures_since_start", filter=by_address),
    )
    return max(totals["username"] or 0, totals["address"] or 0)


async def _recent_failures(username: str, address: str) -> int:
    unit = UnitOfWork(get_pool())
    try:
        return await unit.run(functools.partial(recent_failures, username, address), last=True)
    except DATABASE_ERRORS:
        return 0  # the database is unavailable: the request's own unit of work answers that (503)


def _is_login(request: HttpRequest) -> bool:
    try:
        return resolve(request.path_info).view_name == LOGIN_VIEW
    except Resolver404:
        return False

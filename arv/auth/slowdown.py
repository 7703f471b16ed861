"""Failed admin logins slow the next attempts down, before django-axes refuses them outright.

After n recent failures for a username, or from an address (whichever has more), the next
login form POST for it waits ARV_LOGIN_SLOWDOWN_SECONDS x 2**(n-1), at most
MAX_DELAY_SECONDS, on the event loop before it gets a database worker (Pipeline.http): a
guesser is slowed down, and no worker or connection is held while it waits. The counts are
this server process's own (the lockout, django-axes', is in the database, so every
process's); a failure is forgotten after the cool-off (ARV_LOGIN_COOLOFF_SECONDS), and a
successful login clears its username's and address's counts.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest
from django.urls import Resolver404, resolve

MAX_DELAY_SECONDS = 8.0
MAX_KEYS = 10_000  # usernames and addresses remembered per process; the oldest are forgotten first

LOGIN_VIEW = "admin:login"


class FailedLogins:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # failures are recorded on the database workers
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def delay_for(self, username: str, address: str) -> float:
        base = settings.LOGIN_SLOWDOWN_SECONDS
        failures = max(self._recent(f"user:{username}"), self._recent(f"addr:{address}"))
        return min(base * 2 ** (failures - 1), MAX_DELAY_SECONDS) if failures and base else 0.0

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"user:{username}", f"addr:{address}"):
                self._failures.setdefault(key, deque()).append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)
            self._failures.pop(f"addr:{address}", None)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()

    def _recent(self, key: str) -> int:
        forget_before = time.monotonic() - settings.AXES_COOLOFF_TIME.total_seconds()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return 0
            while times and times[0] < forget_before:
                times.popleft()
            if not times:
                del self._failures[key]
            return len(times)


failed_logins = FailedLogins()


def login_delay(request: HttpRequest) -> float:
    """How long this request waits before it is served: a login form POST after failures."""
    if request.method != "POST":
        return 0.0
    try:
        if resolve(request.path_info).view_name != LOGIN_VIEW:
            return 0.0
    except Resolver404:
        return 0.0
    request.body  # noqa: B018 -- read first, so that the view can still read the body after POST
    return failed_logins.delay_for(request.POST.get("username", ""), _address(request))


def _address(request: HttpRequest | None) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def _record_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    failed_logins.failed(str(credentials.get("username", "")), _address(request))


def _record_success(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    failed_logins.succeeded(user.get_username(), _address(request))


def connect() -> None:
    user_login_failed.connect(_record_failure, dispatch_uid="arv.auth.slowdown.failed")
    user_logged_in.connect(_record_success, dispatch_uid="arv.auth.slowdown.succeeded")

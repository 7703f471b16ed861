"""Checks of a storage connection against the storage itself, one module per provider.

Each provider module has `check(base_path, credentials, deadline) -> Outcome`: plain data
in, plain data out, no ORM (it runs off the database worker: README, Architecture), and
`no_answer(credentials, timeout) -> Outcome` for a check that outran its deadline.
`check_connection()` runs the provider's check on a thread of its own and holds it to the
whole check's deadline: when the deadline passes, every socket the check opened is shut down
(storage.providers.remote.Deadline), so the thread ends then too. At most
ARV_STORAGE_TEST_CONCURRENCY checks run at once per process; one more is answered at once
with an error, without touching the storage.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from django.conf import settings

logger = logging.getLogger("arv.storage")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str  # for the operator: says what failed, never a secret
    writable: bool = False


def failed(message: str) -> Outcome:
    return Outcome(False, message, False)


# What each remote provider needs in `credentials` before it can be checked.
REQUIRED_CREDENTIALS = {
    "minio": ("endpoint", "access_key", "secret_key", "bucket"),
    "yandex_disk": ("oauth_token",),
}


UNREADABLE_CREDENTIALS = "The credentials cannot be decrypted with the configured keys (ARV_CREDENTIALS_KEYS)."
BUSY = (
    "Too many storage checks are running on this server at once (ARV_STORAGE_TEST_CONCURRENCY);"
    " nothing was checked: try again shortly."
)
# How long a check's thread is waited for after its sockets were shut down at the deadline.
AFTER_DEADLINE_SECONDS = 0.5


def _providers() -> dict[str, ModuleType]:
    from storage.providers import local_disk, minio, yandex_disk

    return {"local_disk": local_disk, "minio": minio, "yandex_disk": yandex_disk}


@functools.cache
def _running_checks(bound: int) -> threading.BoundedSemaphore:
    """The slots for checks running at once in this process (one per configured bound)."""
    return threading.BoundedSemaphore(bound)


def check_connection(
    provider: str, base_path: str | None, credentials: dict[str, Any] | None, timeout: float | None = None
) -> Outcome:
    """Whether the storage works, within `timeout` seconds (ARV_STORAGE_TEST_TIMEOUT by default).
    `credentials` None: the stored ones cannot be decrypted."""
    from storage.providers.remote import Deadline

    timeout = settings.STORAGE_TEST_TIMEOUT if timeout is None else timeout
    module = _providers().get(provider)
    if module is None:
        return failed(f"Unknown provider {provider!r}.")
    if credentials is None:
        return failed(UNREADABLE_CREDENTIALS)
    missing = [key for key in REQUIRED_CREDENTIALS.get(provider, ()) if not credentials.get(key)]
    if missing:
        return failed(f"Missing credentials: {', '.join(missing)}.")
    slots = _running_checks(settings.STORAGE_TEST_CONCURRENCY)
    if not slots.acquire(blocking=False):
        return failed(BUSY)
    deadline = Deadline(timeout)
    outcome: list[Outcome] = []

    def run() -> None:
        try:
            outcome.append(module.check(base_path, credentials, deadline))
        except Exception as exc:  # a check's own bug: the message must not carry what it was given
            logger.warning("%s check failed unexpectedly: %s", provider, type(exc).__name__)
            outcome.append(failed(f"The check failed unexpectedly ({type(exc).__name__})."))
        finally:
            slots.release()  # by the thread: a slot is free only once its check has ended

    thread = threading.Thread(target=run, name=f"arv-check-{provider}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: the slot is not taken
        slots.release()
        raise
    thread.join(timeout)
    if thread.is_alive():
        deadline.expire()
        thread.join(AFTER_DEADLINE_SECONDS)
        if thread.is_alive():  # e.g. a name lookup, which nothing can interrupt
            logger.warning("%s check still running after its deadline", provider)
        else:
            deadline.close()
        return module.no_answer(credentials, timeout)
    deadline.close()
    return outcome[0]


def no_answer(credentials: dict[str, Any], timeout: float) -> Outcome:
    """The outcome of a check that outran its deadline (a provider may say more)."""
    return failed(f"The storage did not answer within {timeout:g} s.")

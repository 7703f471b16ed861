"""Checks of a storage connection against the storage itself, one module per provider.

Each provider module has `check(base_path, credentials, timeout) -> Outcome`: plain data
in, plain data out, no ORM (it runs off the database worker: README, Architecture).
`check_connection()` picks the provider's check and holds it to the timeout, retries
included: a check still waiting when the time is up is answered "no answer" and left to
end on its own socket timeouts, on a daemon thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
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


def _checks() -> dict[str, Callable[[str | None, dict[str, Any], float], Outcome]]:
    from storage.providers import local_disk, minio, yandex_disk

    return {"local_disk": local_disk.check, "minio": minio.check, "yandex_disk": yandex_disk.check}


def check_connection(
    provider: str, base_path: str | None, credentials: dict[str, Any], timeout: float | None = None
) -> Outcome:
    """Whether the storage works, within `timeout` seconds (ARV_STORAGE_TEST_TIMEOUT by default)."""
    timeout = settings.STORAGE_TEST_TIMEOUT if timeout is None else timeout
    check = _checks().get(provider)
    if check is None:
        return failed(f"Unknown provider {provider!r}.")
    missing = [key for key in REQUIRED_CREDENTIALS.get(provider, ()) if not credentials.get(key)]
    if missing:
        return failed(f"Missing credentials: {', '.join(missing)}.")
    outcome: list[Outcome] = []

    def run() -> None:
        try:
            outcome.append(check(base_path, credentials, timeout))
        except Exception as exc:  # a check's own bug: the message must not carry what it was given
            logger.warning("%s check failed unexpectedly: %s", provider, type(exc).__name__)
            outcome.append(failed(f"The check failed unexpectedly ({type(exc).__name__})."))

    thread = threading.Thread(target=run, name=f"arv-check-{provider}", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else failed(f"The storage did not answer within {timeout:g} s.")


def probe_budget(timeout: float) -> float:
    """Seconds one network call of a check may take: a little under the whole check's
    timeout, so that a silent endpoint is reported by the check that knows which it is."""
    return max(timeout * 0.9, 0.1)

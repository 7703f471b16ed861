"""local_disk: a directory on this server, confined to ARV_LOCAL_STORAGE_ROOTS."""

from __future__ import annotations

import os
import uuid
from typing import Any

from django.conf import settings

from storage.providers import Outcome, failed


def allowed_roots() -> list[str]:
    return [os.path.realpath(root) for root in settings.LOCAL_STORAGE_ROOTS]


def outside_roots(base_path: str) -> str | None:
    """Why base_path may not be used (None if it may): it must be absolute and resolve,
    symlinks included, to one of the allowed roots or below."""
    if not os.path.isabs(base_path) or "\x00" in base_path:
        return f"{base_path!r} is not an absolute path."
    real = os.path.realpath(base_path)
    for root in allowed_roots():
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return None
    return f"{base_path} is outside the storage roots this server allows (ARV_LOCAL_STORAGE_ROOTS)."


def check(base_path: str | None, credentials: dict[str, Any], timeout: float) -> Outcome:
    """A writable directory inside the roots. Checked again here (a directory may have become
    a symlink outward since it was saved): outside the roots nothing is touched."""
    if not base_path:
        return failed("base_path is required for local_disk connections.")
    problem = outside_roots(base_path)
    if problem:
        return failed(problem)
    real = os.path.realpath(base_path)
    try:
        # O_NOFOLLOW: the resolved directory must not be swapped for a symlink meanwhile.
        directory = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return failed(f"{base_path} does not exist.")
    except NotADirectoryError:
        return failed(f"{base_path} is not a directory.")
    except OSError as exc:
        return failed(f"{base_path} cannot be opened: {exc.strerror}.")
    try:
        probe = f".arv-test-{uuid.uuid4().hex}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=directory))
        except OSError as exc:
            return Outcome(True, f"{base_path} is a directory, not writable: {exc.strerror}.", False)
        os.unlink(probe, dir_fd=directory)
    finally:
        os.close(directory)
    return Outcome(True, f"{base_path} is a writable directory.", True)

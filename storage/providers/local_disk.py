"""local_disk: a directory on this server, confined to ARV_LOCAL_STORAGE_ROOTS."""

from __future__ import annotations

import os
import uuid
from typing import Any

from storage.providers import Outcome, failed
from storage.roots import outside_roots


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

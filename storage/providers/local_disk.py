"""local_disk: a directory on this server, confined to ARV_LOCAL_STORAGE_ROOTS."""

from __future__ import annotations

import errno
import os
import stat
import uuid
from typing import Any

from storage.providers import Outcome, failed, no_answer  # noqa: F401 (no_answer: the provider's)
from storage.roots import outside_roots, root_of

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def open_beneath(root: str, parts: list[str]) -> int:
    """A descriptor of the directory root/parts[0]/parts[1]/..., opened one component at a time
    from the root's descriptor and never through a symlink (O_NOFOLLOW on each component, not
    only the last): a component swapped for a symlink after the path was resolved is refused
    (OSError), so nothing outside `root` is ever reached."""
    directory = os.open(root, DIRECTORY)
    try:
        for part in parts:
            if part in ("", ".", "..") or os.sep in part:
                raise OSError(errno.EINVAL, f"not a path component: {part!r}")
            try:
                inner = os.open(part, DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            except NotADirectoryError:  # Linux's answer for a symlink too: say which it is
                if stat.S_ISLNK(os.stat(part, dir_fd=directory, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, f"{part} is a symlink") from None
                raise
            os.close(directory)
            directory = inner
    except BaseException:
        os.close(directory)
        raise
    return directory


def check(base_path: str | None, credentials: dict[str, Any], deadline: object) -> Outcome:
    """A writable directory inside the roots. Checked again here (a directory may have become
    a symlink outward since it was saved), and opened beneath its root: outside the roots
    nothing is touched."""
    if not base_path:
        return failed("base_path is required for local_disk connections.")
    problem = outside_roots(base_path)
    real = os.path.realpath(base_path)
    root = None if problem else root_of(real)
    if root is None:  # resolved once more: what it resolves to now is what is opened
        return failed(problem or outside_roots(base_path) or f"{base_path} is outside the storage roots.")
    parts = [part for part in os.path.relpath(real, root).split(os.sep) if part != "."]
    try:
        directory = open_beneath(root, parts)
    except FileNotFoundError:
        return failed(f"{base_path} does not exist.")
    except NotADirectoryError:
        return failed(f"{base_path} is not a directory.")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return failed(f"{base_path} changed while it was checked (a symlink on its way); nothing was touched.")
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

"""Where a local_disk connection may point (ARV_LOCAL_STORAGE_ROOTS): a rule of the model
(StorageConnection.clean), of the services and of the local_disk check alike."""

from __future__ import annotations

import os

from django.conf import settings


def allowed_roots() -> list[str]:
    return [os.path.realpath(root) for root in settings.LOCAL_STORAGE_ROOTS]


def root_of(real: str) -> str | None:
    """The allowed root a resolved path lies in (None: none)."""
    for root in allowed_roots():
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None


def outside_roots(base_path: str) -> str | None:
    """Why base_path may not be used (None if it may): it must be absolute and resolve,
    symlinks included, to one of the allowed roots or below."""
    if not os.path.isabs(base_path) or "\x00" in base_path:
        return f"{base_path!r} is not an absolute path."
    if root_of(os.path.realpath(base_path)) is None:
        return f"{base_path} is outside the storage roots this server allows (ARV_LOCAL_STORAGE_ROOTS)."
    return None

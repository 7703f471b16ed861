"""Writes to storage connections and folders, inside the request's transaction."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from arv.db.transaction import outside_database
from arv.web.errors import Conflict, InvalidInput
from companies.access import require_staff
from companies.selectors import company_get
from storage.models import Provider, StorageConnection, StorageFolder, TestStatus, connection_base_path
from storage.selectors import connection_get

# What each remote provider needs in `credentials` before it can be used.
REQUIRED_CREDENTIALS = {
    Provider.MINIO: ("endpoint", "access_key", "secret_key", "bucket"),
    Provider.YANDEX_DISK: ("oauth_token",),
}


def connection_clear_other_defaults(connection_id: int | None) -> None:
    # Same transaction as the save that follows: never two defaults, never none in between.
    StorageConnection.objects.filter(is_default=True).exclude(pk=connection_id).update(is_default=False)


def _require_base_path(provider: str, base_path: str | None) -> None:
    if provider == Provider.LOCAL_DISK and not base_path:
        raise InvalidInput("base_path", "base_path is required for local_disk connections.", "missing")


def _stored_base_path(provider: str, base_path: str | None) -> str | None:
    """The base path as the provider keeps it (canonical for remote providers), else 422."""
    try:
        return connection_base_path(provider, base_path)
    except ValueError as exc:
        raise InvalidInput("base_path", f"Path {exc}.") from None


def connection_create(*, user: AbstractBaseUser, **fields: Any) -> StorageConnection:
    require_staff(user)
    _require_base_path(fields["provider"], fields.get("base_path"))
    fields["base_path"] = _stored_base_path(fields["provider"], fields.get("base_path"))
    if fields.get("is_default"):
        connection_clear_other_defaults(None)
    connection = StorageConnection.objects.create(**fields)
    return connection_get(user=user, connection_id=connection.pk)


def connection_update(*, user: AbstractBaseUser, connection_id: int, **fields: Any) -> StorageConnection:
    connection = connection_get(user=user, connection_id=connection_id)
    for field, value in fields.items():
        setattr(connection, field, value)
    _require_base_path(connection.provider, connection.base_path)
    if {"provider", "base_path"} & set(fields):
        connection.base_path = _stored_base_path(connection.provider, connection.base_path)
        fields["base_path"] = connection.base_path
    if fields.get("is_default"):
        connection_clear_other_defaults(connection.pk)
    connection.save(update_fields=[*fields, "updated_at"])
    return connection_get(user=user, connection_id=connection_id)


def connection_delete(*, user: AbstractBaseUser, connection_id: int) -> None:
    connection = connection_get(user=user, connection_id=connection_id)
    if connection.companies_count:
        raise Conflict("Companies still use this storage connection.")
    connection.delete()


@dataclass
class ConnectionTestResult:
    status: str
    message: str
    tested_at: datetime
    writable: bool


def _probe_local_disk(base_path: str) -> tuple[bool, str, bool]:
    """(ok, message, writable) for a local directory."""
    if not os.path.exists(base_path):
        return False, f"{base_path} does not exist.", False
    if not os.path.isdir(base_path):
        return False, f"{base_path} is not a directory.", False
    try:
        with tempfile.NamedTemporaryFile(dir=base_path, prefix=".arv-test-"):
            pass
    except OSError as exc:
        return False, f"{base_path} is not writable: {exc.strerror}.", False
    return True, f"{base_path} is a writable directory.", True


def _probe(connection: StorageConnection) -> tuple[bool, str, bool]:
    if connection.provider == Provider.LOCAL_DISK:
        return _probe_local_disk(connection.base_path or "")
    missing = [key for key in REQUIRED_CREDENTIALS[connection.provider] if not connection.credentials.get(key)]
    if missing:
        return False, f"Missing credentials: {', '.join(missing)}.", False
    return False, f"Checking a {connection.get_provider_display()} connection is not available on this server.", False


def connection_test(*, user: AbstractBaseUser, connection_id: int) -> ConnectionTestResult:
    """Check the connection works; the outcome is stored on it, success or not."""
    connection = connection_get(user=user, connection_id=connection_id)
    outside_database()  # the probe touches the disk: never run this request twice
    ok, message, writable = _probe(connection)
    connection.last_tested_at = timezone.now()
    connection.test_status = TestStatus.SUCCESS if ok else TestStatus.ERROR
    connection.test_error = None if ok else message
    connection.save(update_fields=["last_tested_at", "test_status", "test_error", "updated_at"])
    return ConnectionTestResult(connection.test_status, message, connection.last_tested_at, writable)


def folder_create(*, user: AbstractBaseUser, company_id: int, **fields: Any) -> StorageFolder:
    company = company_get(user=user, company_id=company_id)
    return StorageFolder.objects.create(company=company, **fields)

"""Writes to storage connections.

Each service owns its transaction: inside a request it joins the request's unit of work
(arv.db.transaction; savepoint=False, a savepoint would only add round trips), elsewhere
(`manage.py shell`, a command) it is one transaction of its own. Each validates the model as
the admin does (arv.db.validation): an invalid value raises ValidationError and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from arv.auth.permissions import require
from arv.db.validation import full_clean
from arv.web.errors import Conflict, InvalidInput
from storage.addresses import minio_endpoint_refusal
from storage.credentials import UnreadableCredentials
from storage.models import Provider, StorageConnection, TestStatus, connection_base_path
from storage.providers import Outcome, check_connection
from storage.roots import outside_roots
from storage.selectors import connection_get


def connection_clear_other_defaults(connection_id: int | None) -> None:
    # Same transaction as the save that follows (the caller's): never two defaults, never none in between.
    StorageConnection.objects.filter(is_default=True).exclude(pk=connection_id).update(is_default=False)


def _checked_base_path(provider: str, base_path: str | None, *, confine: bool = True) -> str | None:
    """The base path as the provider keeps it (canonical for remote providers), else 422.
    A local_disk one is required and, when it is set or changed, must lie inside the roots."""
    if provider == Provider.LOCAL_DISK and not base_path:
        raise InvalidInput("base_path", "base_path is required for local_disk connections.", "missing")
    try:
        base_path = connection_base_path(provider, base_path)
    except ValueError as exc:
        raise InvalidInput("base_path", f"Path {exc}.") from None
    if confine and provider == Provider.LOCAL_DISK and (problem := outside_roots(base_path)):
        raise InvalidInput("base_path", problem)
    return base_path


def _check_endpoint(provider: str, credentials: dict[str, Any] | None) -> None:
    """A MinIO endpoint must resolve to an address checks may connect to, else 422
    (storage.addresses): nothing is stored that the check would refuse."""
    if provider == Provider.MINIO and credentials and (problem := minio_endpoint_refusal(credentials)):
        raise InvalidInput("credentials", problem)


@transaction.atomic(savepoint=False)
def connection_create(*, user: AbstractBaseUser, **fields: Any) -> StorageConnection:
    require(user, "add", StorageConnection)
    fields["base_path"] = _checked_base_path(fields["provider"], fields.get("base_path"))
    _check_endpoint(fields["provider"], fields.get("credentials"))
    connection = StorageConnection(**fields)
    full_clean(connection)
    if connection.is_default:
        connection_clear_other_defaults(None)
    connection.save(force_insert=True)
    return connection_get(user=user, connection_id=connection.pk)


@transaction.atomic(savepoint=False)
def connection_update(*, user: AbstractBaseUser, connection_id: int, **fields: Any) -> StorageConnection:
    require(user, "change", StorageConnection)
    connection = connection_get(user=user, connection_id=connection_id)
    for field, value in fields.items():
        setattr(connection, field, value)
    if "credentials" in fields:
        _check_endpoint(connection.provider, fields["credentials"])
    moves = bool({"provider", "base_path"} & set(fields))
    base_path = _checked_base_path(connection.provider, connection.base_path, confine=moves)
    if moves:
        connection.base_path = fields["base_path"] = base_path
    # base_path is _checked_base_path's (the model's clean() rule, which the admin applies),
    # except that a local_disk path is confined to the roots only when it moves: a connection
    # left outside roots that changed since can still be renamed or deactivated.
    full_clean(connection, fields=fields, exclude=["base_path"], model_clean=False)
    if fields.get("is_default"):
        connection_clear_other_defaults(connection.pk)
    connection.save(update_fields=[*fields, "updated_at"])
    return connection_get(user=user, connection_id=connection_id)


@transaction.atomic(savepoint=False)
def connection_delete(*, user: AbstractBaseUser, connection_id: int) -> None:
    require(user, "delete", StorageConnection)
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


@dataclass(frozen=True)
class CheckTarget:
    """What a connection's check needs, read in one unit of work and probed outside it."""

    provider: str
    base_path: str | None
    credentials: dict[str, Any] | None  # None: no configured key decrypts them


def check_target(connection: StorageConnection) -> CheckTarget:
    try:
        credentials = connection.decrypted_credentials()
    except UnreadableCredentials:
        credentials = None  # the check says so; nothing else needs them
    return CheckTarget(connection.provider, connection.base_path, credentials)


def connection_check_target(*, user: AbstractBaseUser, connection_id: int) -> CheckTarget:
    require(user, "change", StorageConnection)  # a check writes a probe and stores its outcome
    return check_target(connection_get(user=user, connection_id=connection_id))


def check_targets(targets: list[CheckTarget]) -> list[Outcome]:
    """The checks, one after the other (no database: run outside it)."""
    return [check_connection(target.provider, target.base_path, target.credentials) for target in targets]


@transaction.atomic(savepoint=False)
def connection_record_test(*, user: AbstractBaseUser, connection_id: int, outcome: Outcome) -> ConnectionTestResult:
    """Store a check's outcome on the connection, success or not (no client input: nothing to validate)."""
    require(user, "change", StorageConnection)
    connection = connection_get(user=user, connection_id=connection_id)
    connection.last_tested_at = timezone.now()
    connection.test_status = TestStatus.SUCCESS if outcome.ok else TestStatus.ERROR
    connection.test_error = None if outcome.ok else outcome.message
    connection.save(update_fields=["last_tested_at", "test_status", "test_error", "updated_at"])
    return ConnectionTestResult(connection.test_status, outcome.message, connection.last_tested_at, outcome.writable)

"""Reads of storage connections and folders."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum
from django.http import Http404

from arv.auth.permissions import require
from arv.db.queries import one_or_none
from storage.models import StorageConnection, StorageFolder


def _connections() -> QuerySet[StorageConnection]:
    return StorageConnection.objects.annotate(companies_count=Count("companies"))


def connection_list(*, user: AbstractBaseUser, is_active: bool | None = None) -> list[StorageConnection]:
    require(user, "view", StorageConnection)
    connections = _connections()
    if is_active is not None:
        connections = connections.filter(is_active=is_active)
    return list(connections.order_by("id"))


def connection_get(*, user: AbstractBaseUser, connection_id: int) -> StorageConnection:
    require(user, "view", StorageConnection)
    connection = one_or_none(_connections().filter(pk=connection_id))
    if connection is None:
        raise Http404("No such storage connection.")
    return connection


def connection_stats(*, user: AbstractBaseUser, connection_id: int) -> dict[str, int]:
    connection = connection_get(user=user, connection_id=connection_id)
    totals = StorageFolder.objects.filter(company__storage_connection=connection).aggregate(
        folders_count=Count("id"), files_count=Sum("files_count"), total_size_bytes=Sum("total_size_bytes")
    )
    return {
        "companies_count": connection.companies_count,
        "folders_count": totals["folders_count"],
        "files_count": totals["files_count"] or 0,
        "total_size_bytes": totals["total_size_bytes"] or 0,
    }

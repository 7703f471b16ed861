"""Timestamps read from PostgreSQL are what Django's own loader gives (aware, in UTC), parsed by
psycopg's C loader (arv.db.postgresql.UtcTimestampLoader): on the worker's cursors and on the
event loop's reads, which share the connection's adapters."""

from __future__ import annotations

import datetime

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's timestamptz"),
]

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid

VALUES = [
    "2026-12-06 01:02:03.456789+00",
    "2026-01-02 03:04:05.123456+05:30",  # another offset: the same instant, in UTC
    "1999-12-31 23:59:59-08",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
]


def _read(values: list[str]) -> tuple[datetime.datetime, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["%s::timestamptz"] * len(values)), values)
        return cursor.fetchone()


def test_timestamps_read_as_djangos_own_loader_reads_them():
    from arv.db.postgresql.base import UtcTimestampLoader

    ours = _read(VALUES)
    assert connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is UtcTimestampLoader

    djangos = AdaptersMap(connection.connection.adapters)
    register_tzloader(connection.timezone, djangos)  # what Django registers on its own
    assert djangos.get_loader(TIMESTAMPTZ_OID, Format.TEXT) is not UtcTimestampLoader
    mine, connection.connection._adapters = connection.connection._adapters, djangos
    try:
        expected = _read(VALUES)
    finally:
        connection.connection._adapters = mine
    assert ours == expected
    assert all(value.tzinfo is datetime.UTC for value in ours)
    assert ours[1] == datetime.datetime(2026, 1, 1, 21, 34, 5, 123456, tzinfo=datetime.UTC)

"""No write is half-done: a failure injected after a write endpoint's first write leaves the
database exactly as it was (arv.db.transaction rolls the whole request back).

The live server runs in this process (testing.fixtures.live_url), so the failure is
injected into its database workers' connections: either the statement that follows the
request's first INSERT/UPDATE/DELETE fails (its COMMIT, if nothing follows the write), or
the final COMMIT does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

from arv.db.workers import in_database_worker
from companies.models import Company, CompanyMembership
from storage.models import StorageConnection, StorageFolder

pytestmark = pytest.mark.django_db(transaction=True)

WRITES = ("INSERT", "UPDATE", "DELETE")


class InjectedFailure:
    """Armed for one request: fails on the database worker at the chosen point."""

    def __init__(self, point: str) -> None:
        self.point = point
        self.wrote = False
        self.fired = threading.Event()

    def before_statement(self, sql: str) -> None:
        if self.point != "after_first_write" or not in_database_worker() or self.fired.is_set():
            return
        if self.wrote:
            self.fired.set()
            raise OperationalError("injected: the statement after the first write fails")
        self.wrote = sql.lstrip().upper().startswith(WRITES)

    def before_commit(self) -> None:
        # "after_first_write" falls through to the COMMIT when the write was the last statement.
        if not in_database_worker() or self.fired.is_set() or (self.point == "after_first_write" and not self.wrote):
            return
        self.fired.set()
        raise OperationalError("injected: COMMIT fails")


@pytest.fixture
def inject(monkeypatch) -> Iterator[callable]:
    armed: list[InjectedFailure] = []
    execute, commit = CursorWrapper.execute, BaseDatabaseWrapper.commit

    def patched_execute(self, sql, params=None):
        for failure in armed:
            failure.before_statement(str(sql))
        return execute(self, sql, params)

    def patched_commit(self):
        for failure in armed:
            failure.before_commit()
        return commit(self)

    monkeypatch.setattr(CursorWrapper, "execute", patched_execute)
    monkeypatch.setattr(BaseDatabaseWrapper, "commit", patched_commit)

    def arm(point: str) -> InjectedFailure:
        armed.clear()
        failure = InjectedFailure(point)
        armed.append(failure)
        return failure

    yield arm
    armed.clear()


def snapshot() -> dict[str, list]:
    return {
        model.__name__: sorted(map(repr, model.objects.values_list()))
        for model in (Company, CompanyMembership, StorageConnection, StorageFolder)
    }


@pytest.fixture
def world(make_company, local_connection):
    company = make_company("Write Co", storage_connection=local_connection)
    empty = make_company("Empty Co")
    company.folders.create(name="a", path="/a")
    spare = StorageConnection.objects.create(name="Spare", provider="minio")
    return {"company": company.id, "empty": empty.id, "connection": local_connection.id, "spare": spare.id}


def write_requests(ids: dict[str, int]) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", "/api/companies", {"name": "New Co", "storage_connection_id": ids["connection"]}),
        ("PATCH", f"/api/companies/{ids['company']}", {"name": "Renamed", "notes": "n"}),
        ("PUT", f"/api/companies/{ids['empty']}/storage", {"storage_connection_id": ids["connection"]}),
        ("DELETE", f"/api/companies/{ids['empty']}", None),
        ("POST", f"/api/companies/{ids['company']}/folders", {"name": "b", "path": "/b"}),
        ("POST", "/api/storage/connections", {"name": "Fresh", "provider": "minio", "is_default": True}),
        ("PATCH", f"/api/storage/connections/{ids['spare']}", {"is_default": True, "name": "Spare 2"}),
        ("DELETE", f"/api/storage/connections/{ids['spare']}", None),
        ("POST", f"/api/storage/connections/{ids['connection']}/test", None),
    ]


WRITE_CASES = [
    f"{method} {path}"
    for method, path, _ in write_requests(dict.fromkeys(["company", "empty", "connection", "spare"], "{id}"))
]


@pytest.mark.parametrize("point", ["after_first_write", "commit"])
@pytest.mark.parametrize("case", range(len(WRITE_CASES)), ids=WRITE_CASES)
def test_a_failure_after_the_first_write_leaves_nothing(staff, world, inject, point, case):
    method, path, body = write_requests(world)[case]
    before = snapshot()
    failure = inject(point)
    response = staff.request(method, path, json=body)
    assert failure.fired.is_set(), "the injected failure never happened: the test proves nothing"
    assert response.status_code == 503
    assert "detail" in response.json()
    assert snapshot() == before


def test_without_injection_the_same_writes_succeed(staff, world):
    statuses = [staff.request(method, path, json=body).status_code for method, path, body in write_requests(world)]
    assert statuses == [201, 200, 200, 204, 201, 201, 200, 204, 200]

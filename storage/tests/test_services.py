"""The storage services called as `manage.py shell` or a command calls them: no request, no
server, the real database. An invalid value raises ValidationError and writes nothing; inside
a caller's transaction a service joins it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from storage.models import StorageConnection
from storage.services import connection_create, connection_update

pytestmark = pytest.mark.django_db(transaction=True)  # no test transaction around the calls: as in the shell


def names() -> list[str]:
    return list(StorageConnection.objects.order_by("pk").values_list("name", flat=True))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metadata": ["not", "an", "object"]}, "metadata"),  # the model's validator (storable_json_object)
        ({"provider": "ftp"}, "provider"),  # not one of the choices
        ({"provider": "minio", "base_path": "/a/../b"}, "base_path"),  # the path rule
        ({"provider": "local_disk", "base_path": "/etc"}, "base_path"),  # outside ARV_LOCAL_STORAGE_ROOTS
    ],
)
def test_an_invalid_connection_raises_validation_error_and_writes_nothing(staff_user, fields, field):
    before = names()
    with pytest.raises(ValidationError) as raised:
        connection_create(user=staff_user, **{"name": "Bad", "provider": "minio", **fields})
    assert field in raised.value.message_dict
    assert names() == before


def test_an_invalid_update_writes_nothing(staff_user, local_connection):
    with pytest.raises(ValidationError) as raised:
        connection_update(user=staff_user, connection_id=local_connection.pk, name="Renamed", metadata=[1])
    assert "metadata" in raised.value.message_dict
    local_connection.refresh_from_db()
    assert (local_connection.name, local_connection.metadata) == ("Disk", {})


def test_one_default_outside_a_request(staff_user, local_connection):
    """Clearing the other default and saving this one are one transaction, the service's own."""
    created = connection_create(user=staff_user, name="Bucket", provider="minio", base_path="/b", is_default=True)
    assert list(StorageConnection.objects.filter(is_default=True).values_list("pk", flat=True)) == [created.pk]
    local_connection.refresh_from_db()
    assert not local_connection.is_default


def test_a_service_inside_an_outer_atomic_joins_it_without_a_savepoint(staff_user, local_connection):
    with pytest.raises(RuntimeError), transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            connection_create(user=staff_user, name="Bucket", provider="minio", base_path="/b", is_default=True)
        assert not [query for query in queries if "SAVEPOINT" in query["sql"].upper()]
        raise RuntimeError("the caller changes its mind")
    assert names()[-1] == "Disk"
    local_connection.refresh_from_db()
    assert local_connection.is_default  # the cleared default came back with the rollback

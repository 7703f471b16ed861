"""/api/storage/connections against API.md."""

import pytest

from storage.models import StorageConnection

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTION_FIELDS = {
    "id",
    "name",
    "provider",
    "base_path",
    "is_default",
    "is_active",
    "last_tested_at",
    "test_status",
    "test_error",
    "metadata",
    "companies_count",
    "created_at",
    "updated_at",
}


def test_create_returns_the_connection_without_credentials(staff, tmp_path):
    body = {"name": "Minio A", "provider": "minio", "credentials": {"secret_key": "s3cr3t"}, "metadata": {"r": 1}}
    response = staff.post("/api/storage/connections", json=body)
    assert response.status_code == 201
    assert set(response.json()) == CONNECTION_FIELDS
    assert "s3cr3t" not in response.text
    assert StorageConnection.objects.get(name="Minio A").decrypted_credentials() == {"secret_key": "s3cr3t"}


def test_credentials_never_appear_in_any_answer(staff, local_connection):
    local_connection.credentials = {"token": "hunter2-secret"}
    local_connection.save()
    for path in ["/api/storage/connections", f"/api/storage/connections/{local_connection.id}"]:
        assert "hunter2-secret" not in staff.get(path).text
    assert (
        "hunter2-secret"
        not in staff.patch(f"/api/storage/connections/{local_connection.id}", json={"metadata": {}}).text
    )


def test_local_disk_needs_a_base_path(staff):
    assert staff.post("/api/storage/connections", json={"name": "Disk X", "provider": "local_disk"}).status_code == 422
    assert not StorageConnection.objects.filter(name="Disk X").exists()


def test_duplicate_name_is_409(staff, local_connection):
    body = {"name": local_connection.name, "provider": "minio"}
    assert staff.post("/api/storage/connections", json=body).status_code == 409


def test_making_a_connection_default_clears_the_old_default(staff, local_connection):
    response = staff.post(
        "/api/storage/connections", json={"name": "New Default", "provider": "minio", "is_default": True}
    )
    assert response.status_code == 201
    local_connection.refresh_from_db()
    assert not local_connection.is_default
    assert list(StorageConnection.objects.filter(is_default=True).values_list("name", flat=True)) == ["New Default"]


def test_a_failed_request_leaves_the_old_default_in_place(staff, local_connection):
    """The default is cleared first, then the insert fails on the name: the whole request rolls back."""
    StorageConnection.objects.create(name="Taken", provider="minio")
    response = staff.post("/api/storage/connections", json={"name": "Taken", "provider": "minio", "is_default": True})
    assert response.status_code == 409
    local_connection.refresh_from_db()
    assert local_connection.is_default


def test_patch_to_default_moves_the_flag(staff, local_connection):
    other = StorageConnection.objects.create(name="Other", provider="minio")
    response = staff.patch(f"/api/storage/connections/{other.id}", json={"is_default": True})
    assert response.status_code == 200 and response.json()["is_default"] is True
    local_connection.refresh_from_db()
    assert not local_connection.is_default


def test_patch_clearing_the_base_path_of_local_disk_is_422(staff, local_connection):
    response = staff.patch(f"/api/storage/connections/{local_connection.id}", json={"base_path": None})
    assert response.status_code == 422
    local_connection.refresh_from_db()
    assert local_connection.base_path


def test_list_filters_on_is_active(staff, local_connection):
    StorageConnection.objects.create(name="Off", provider="minio", is_active=False)
    names = [c["name"] for c in staff.get("/api/storage/connections", params={"is_active": "false"}).json()]
    assert names == ["Off"]


def test_delete_of_a_connection_in_use_is_409(staff, local_connection, make_company):
    make_company("User Co", storage_connection=local_connection)
    assert staff.delete(f"/api/storage/connections/{local_connection.id}").status_code == 409
    assert StorageConnection.objects.filter(pk=local_connection.pk).exists()


def test_delete_of_an_unused_connection_is_204(staff, local_connection):
    assert staff.delete(f"/api/storage/connections/{local_connection.id}").status_code == 204
    assert staff.get(f"/api/storage/connections/{local_connection.id}").status_code == 404


def test_testing_a_writable_local_directory_succeeds_and_is_stored(staff, local_connection):
    response = staff.post(f"/api/storage/connections/{local_connection.id}/test")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["writable"]) == ("success", True)
    local_connection.refresh_from_db()
    assert local_connection.test_status == "success" and local_connection.last_tested_at is not None


def test_testing_a_missing_directory_reports_the_error_and_stores_it(staff, local_connection, tmp_path):
    local_connection.base_path = str(tmp_path / "missing")
    local_connection.save()
    body = staff.post(f"/api/storage/connections/{local_connection.id}/test").json()
    assert (body["status"], body["writable"]) == ("error", False)
    local_connection.refresh_from_db()
    assert local_connection.test_status == "error" and "does not exist" in local_connection.test_error


def test_testing_a_file_instead_of_a_directory_is_an_error(staff, local_connection, tmp_path):
    (tmp_path / "file").write_text("x")
    local_connection.base_path = str(tmp_path / "file")
    local_connection.save()
    assert staff.post(f"/api/storage/connections/{local_connection.id}/test").json()["status"] == "error"


def test_stats_add_up_the_folders_of_companies_using_the_connection(staff, local_connection, make_company):
    company = make_company("Stats Co", storage_connection=local_connection)
    company.folders.create(name="a", path="/a", files_count=3, total_size_bytes=100)
    company.folders.create(name="b", path="/b", files_count=2, total_size_bytes=50)
    make_company("Elsewhere").folders.create(name="c", path="/c", files_count=9, total_size_bytes=9)
    body = staff.get(f"/api/storage/connections/{local_connection.id}/stats").json()
    assert body == {"companies_count": 1, "folders_count": 2, "files_count": 5, "total_size_bytes": 150}


def test_missing_connection_is_404(staff):
    for method, path in [
        ("GET", "/api/storage/connections/98765"),
        ("PATCH", "/api/storage/connections/98765"),
        ("DELETE", "/api/storage/connections/98765"),
        ("POST", "/api/storage/connections/98765/test"),
        ("GET", "/api/storage/connections/98765/stats"),
    ]:
        assert staff.request(method, path, json={} if method == "PATCH" else None).status_code == 404, path

"""Paths through the API (API.md, "Paths"): one canonical form, the unique rule sees it, and
anything that could escape is 422 with nothing written."""

import pytest

from companies.models import Company
from storage.models import StorageConnection, StorageFolder

pytestmark = pytest.mark.django_db(transaction=True)

ESCAPING = ["../../../etc/passwd", "/a/..", "a\\..\\..\\b", "a/\x01b", "a/b\x7f"]


def assert_422_on(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"]), response.json()


def test_a_folder_path_is_stored_canonical(staff, make_company):
    company = make_company("Path Co")
    response = staff.post(f"/api/companies/{company.id}/folders", json={"name": "a", "path": "./photos//2024/"})
    assert response.status_code == 201
    assert response.json()["path"] == "/photos/2024"
    assert StorageFolder.objects.get().path == "/photos/2024"


@pytest.mark.parametrize("spelling", ["a/b", "a//b/", "./a/b", "/a/b/"])
def test_spellings_of_a_taken_path_are_409(staff, make_company, spelling):
    company = make_company("Dup Path Co")
    assert staff.post(f"/api/companies/{company.id}/folders", json={"name": "a", "path": "/a/b"}).status_code == 201
    response = staff.post(f"/api/companies/{company.id}/folders", json={"name": "b", "path": spelling})
    assert response.status_code == 409, response.text
    assert StorageFolder.objects.count() == 1


@pytest.mark.parametrize("path", [*ESCAPING, "/", "./"])
def test_a_folder_path_that_escapes_or_is_the_root_is_422(staff, make_company, path):
    company = make_company("Escape Co")
    assert_422_on(staff.post(f"/api/companies/{company.id}/folders", json={"name": "x", "path": path}), "path")
    assert not StorageFolder.objects.exists()


def test_a_company_storage_path_is_stored_canonical_everywhere(staff, make_company, local_connection):
    created = staff.post("/api/companies", json={"name": "Stored Co", "storage_path": "clients//stored/"})
    assert created.status_code == 201 and created.json()["storage_path"] == "/clients/stored"
    company_id = created.json()["id"]
    patched = staff.patch(f"/api/companies/{company_id}", json={"storage_path": "./clients/p/"})
    assert patched.json()["storage_path"] == "/clients/p"
    put = staff.put(
        f"/api/companies/{company_id}/storage",
        json={"storage_connection_id": local_connection.id, "storage_path": "x/y/"},
    )
    assert put.json()["storage_path"] == "/x/y"
    assert Company.objects.get(pk=company_id).storage_path == "/x/y"


@pytest.mark.parametrize("path", ESCAPING)
def test_a_company_storage_path_that_escapes_is_422_everywhere(staff, make_company, local_connection, path):
    company = make_company("Kept Co", storage_path="/kept")
    assert_422_on(staff.post("/api/companies", json={"name": "New Co", "storage_path": path}), "storage_path")
    assert_422_on(staff.patch(f"/api/companies/{company.id}", json={"storage_path": path}), "storage_path")
    body = {"storage_connection_id": local_connection.id, "storage_path": path}
    assert_422_on(staff.put(f"/api/companies/{company.id}/storage", json=body), "storage_path")
    assert list(Company.objects.values_list("name", "storage_path").exclude(is_default=True)) == [("Kept Co", "/kept")]


@pytest.mark.parametrize("provider", ["minio", "yandex_disk"])
def test_a_remote_base_path_is_stored_canonical(staff, provider):
    created = staff.post("/api/storage/connections", json={"name": "R", "provider": provider, "base_path": "arv//x/"})
    assert created.status_code == 201 and created.json()["base_path"] == "/arv/x"
    connection_id = created.json()["id"]
    patched = staff.patch(f"/api/storage/connections/{connection_id}", json={"base_path": "./y/"})
    assert patched.json()["base_path"] == "/y"
    assert StorageConnection.objects.get(pk=connection_id).base_path == "/y"


@pytest.mark.parametrize("path", ESCAPING)
def test_a_remote_base_path_that_escapes_is_422(staff, path):
    body = {"name": "R", "provider": "minio", "base_path": path}
    assert_422_on(staff.post("/api/storage/connections", json=body), "base_path")
    assert not StorageConnection.objects.filter(name="R").exists()
    remote = StorageConnection.objects.create(name="Kept", provider="minio", base_path="/kept")
    response = staff.patch(f"/api/storage/connections/{remote.id}", json={"base_path": path})
    assert_422_on(response, "base_path")
    remote.refresh_from_db()
    assert remote.base_path == "/kept"


def test_turning_a_local_connection_remote_canonicalizes_its_base_path(staff, local_connection):
    local_connection.base_path = "/srv/data/"
    local_connection.save()
    response = staff.patch(f"/api/storage/connections/{local_connection.id}", json={"provider": "minio"})
    assert response.status_code == 200 and response.json()["base_path"] == "/srv/data"


def test_a_local_disk_base_path_with_a_control_character_is_422(staff, tmp_path):
    body = {"name": "L", "provider": "local_disk", "base_path": f"{tmp_path}/a\x1bb"}
    assert_422_on(staff.post("/api/storage/connections", json=body), "base_path")
    assert not StorageConnection.objects.filter(name="L").exists()

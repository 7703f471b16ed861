"""/api/companies/{id}/folders against API.md."""

import pytest

from storage.models import StorageFolder

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_and_list_folders(staff, make_company):
    company = make_company("Folder Co")
    response = staff.post(
        f"/api/companies/{company.id}/folders", json={"name": "Faces", "path": "/faces", "folder_type": "portraits"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "company_id",
        "name",
        "path",
        "folder_type",
        "files_count",
        "total_size_bytes",
        "created_at",
        "updated_at",
    }
    assert (body["company_id"], body["folder_type"], body["files_count"]) == (company.id, "portraits", 0)
    assert [f["path"] for f in staff.get(f"/api/companies/{company.id}/folders").json()] == ["/faces"]
    assert staff.get(f"/api/companies/{company.id}").json()["folders_count"] == 1


def test_a_path_is_unique_within_a_company(staff, make_company):
    company, other = make_company("Dup Co"), make_company("Dup Other")
    assert staff.post(f"/api/companies/{company.id}/folders", json={"name": "a", "path": "/p"}).status_code == 201
    assert staff.post(f"/api/companies/{company.id}/folders", json={"name": "b", "path": "/p"}).status_code == 409
    assert staff.post(f"/api/companies/{other.id}/folders", json={"name": "c", "path": "/p"}).status_code == 201
    assert StorageFolder.objects.filter(path="/p").count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a"},
        {"path": "/a"},
        {"name": "a", "path": "/a", "folder_type": "music"},
        {"name": "a", "path": ""},
        {"name": "a", "path": "/a", "files_count": 5},
    ],
)
def test_invalid_folders_are_422(staff, make_company, body):
    company = make_company("Invalid Folder Co")
    assert staff.post(f"/api/companies/{company.id}/folders", json=body).status_code == 422
    assert not StorageFolder.objects.exists()


def test_folders_of_a_missing_company_are_404(staff):
    assert staff.get("/api/companies/424242/folders").status_code == 404
    assert staff.post("/api/companies/424242/folders", json={"name": "a", "path": "/a"}).status_code == 404

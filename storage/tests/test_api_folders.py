"""/api/companies/{id}/folders against API.md: folders within the company's limit, the list in pages."""

import threading
from concurrent.futures import ThreadPoolExecutor

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


# --- the company's projects_limit (issue 18, suspected item) ---------------------------------


def test_folders_stop_at_the_companys_limit(staff, member_of, make_company):
    company = make_company("Limited Co", projects_limit=2)
    member = member_of(company)
    for number, client in enumerate([member, staff]):
        answer = client.post(f"/api/companies/{company.id}/folders", json={"name": "f", "path": f"/f{number}"})
        assert answer.status_code == 201, answer.text
    for client in (member, staff):
        refused = client.post(f"/api/companies/{company.id}/folders", json={"name": "f", "path": "/one-more"})
        assert refused.status_code == 409, refused.text
        assert refused.json() == {"detail": "The company has reached its limit of 2 folders (projects_limit)."}
    assert StorageFolder.objects.filter(company=company).count() == 2


def test_concurrent_creates_cannot_pass_the_limit(member_of, make_company):
    """Eight creates at once against a limit of three (the server runs them on several database
    workers): each counts after the one before it has committed, so exactly three get in."""
    company = make_company("Raced Co", projects_limit=3)
    member = member_of(company)
    start = threading.Barrier(8)

    def create(number: int) -> int:
        start.wait()
        body = {"name": "f", "path": f"/race-{number}"}
        return member.post(f"/api/companies/{company.id}/folders", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(create, range(8)))
    assert statuses == [201] * 3 + [409] * 5
    assert StorageFolder.objects.filter(company=company).count() == 3


# --- the folder list in pages ---------------------------------------------------------------


def test_the_folder_list_comes_in_pages_and_stays_a_list(staff, make_company):
    company = make_company("Paged Co", projects_limit=200)
    StorageFolder.objects.bulk_create(
        StorageFolder(company=company, name=f"f{number}", path=f"/f{number:03}") for number in range(120)
    )
    url = f"/api/companies/{company.id}/folders"
    first = staff.get(url)
    assert first.status_code == 200 and isinstance(first.json(), list)
    assert ([folder["path"] for folder in first.json()][:2], len(first.json())) == (["/f000", "/f001"], 100)
    assert first.headers["X-Total-Count"] == "120"
    page = staff.get(url, params={"page": 3, "page_size": 50})
    assert [folder["path"] for folder in page.json()] == [f"/f{number:03}" for number in range(100, 120)]
    assert page.headers["X-Total-Count"] == "120"
    assert staff.get(url, params={"page": 9, "page_size": 50}).json() == []
    for bad in ({"page": 0}, {"page_size": 0}, {"page_size": 101}, {"page": "x"}):
        assert staff.get(url, params=bad).status_code == 422, bad

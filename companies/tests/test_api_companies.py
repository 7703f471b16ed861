"""/api/companies against API.md, through a real uvicorn and database."""

import pytest
from django.db import connection, transaction
from django.db.models import Q

from companies.models import Company

pytestmark = pytest.mark.django_db(transaction=True)

COMPANY_FIELDS = {
    "id",
    "name",
    "slug",
    "contact_email",
    "contact_phone",
    "telegram_chat_id",
    "storage_connection_id",
    "storage_path",
    "subscription_tier",
    "storage_quota_gb",
    "storage_used_bytes",
    "projects_limit",
    "is_active",
    "is_default",
    "subscription_expires_at",
    "notes",
    "metadata",
    "folders_count",
    "created_at",
    "updated_at",
}


def test_create_returns_the_company_with_a_derived_slug(staff):
    response = staff.post("/api/companies", json={"name": "  Acme Films ", "metadata": {"plan": "x"}})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == COMPANY_FIELDS
    assert body["name"] == "Acme Films"
    assert body["slug"] == "acme-films"
    assert body["metadata"] == {"plan": "x"}
    assert body["folders_count"] == 0
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert Company.objects.filter(slug="acme-films").exists()


@pytest.mark.parametrize(
    "expires, stored",
    [
        ("2030-01-01T02:00:00+02:00", "2030-01-01T00:00:00+00:00"),  # another offset: the same instant, in UTC
        ("2030-01-01T00:00:00", "2030-01-01T00:00:00+00:00"),  # no offset: read in TIME_ZONE (UTC), as Django saves it
    ],
)
def test_create_answers_the_company_as_a_read_of_it_does(staff, expires, stored):
    """The create's answer is built from the saved instance (no second query): it must say what
    the row says, for every value the model or PostgreSQL normalises."""
    body = {
        "name": "\uff21cme  Films",  # fullwidth A: stored NFKC
        "contact_email": " ops@acme.example ",
        "storage_path": "media//acme/",
        "subscription_expires_at": expires,
        "metadata": {"b": 1, "a": {"y": [1, 2.5], "x": None}},
    }
    created = staff.post("/api/companies", json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["subscription_expires_at"] == stored
    assert answer == staff.get(f"/api/companies/{answer['id']}").json()


def test_create_with_a_name_taken_ignoring_case_is_409(staff, make_company):
    make_company("Acme")
    response = staff.post("/api/companies", json={"name": "ACME"})
    assert response.status_code == 409
    assert Company.objects.filter(name__iexact="acme").count() == 1


def test_create_with_a_slug_taken_is_409(staff, make_company):
    make_company("Acme Ltd", slug="acme-films")
    assert staff.post("/api/companies", json={"name": "Acme Films"}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": "ok", "unknown": 1},
        {"name": None},
        {"name": "ok", "subscription_tier": "gold"},
        {"name": "ok", "storage_quota_gb": -1},
        {"name": "ok", "metadata": [1]},
        {"name": "ok", "contact_email": "not-an-email"},
        {"name": "ok", "is_active": None},
    ],
)
def test_create_with_invalid_fields_is_422_and_writes_nothing(staff, body):
    before = Company.objects.count()
    response = staff.post("/api/companies", json=body)
    assert response.status_code == 422
    assert all({"loc", "msg", "type"} <= set(error) for error in response.json()["detail"])
    assert Company.objects.count() == before


@pytest.mark.parametrize(
    "body, loc",
    [
        ({}, ["body", "name"]),
        ({"name": "ok", "contact_email": "not-an-email"}, ["body", "contact_email"]),
        ({"name": "ok", "unknown": 1}, ["body", "unknown"]),
        ({"name": "ok", "metadata": [1]}, ["body", "metadata"]),
    ],
)
def test_a_422_locates_a_body_field_as_body_then_the_field(staff, make_company, body, loc):
    """As API.md's other 422s do (and the FastAPI service did): the same place whichever layer
    refused the value, the schema (here) or the model (test_api_model_rules), on a create and on
    a patch."""
    assert [error["loc"] for error in staff.post("/api/companies", json=body).json()["detail"]] == [loc]
    company = make_company("Located Co")
    patch = {field: value for field, value in body.items() if field != "name"} or {"name": None}
    answer = staff.patch(f"/api/companies/{company.id}", json=patch)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["body", next(iter(patch))]]


def test_a_422_locates_a_query_parameter_as_query_then_its_name(staff):
    detail = staff.get("/api/companies", params={"page_size": 101}).json()["detail"]
    assert [error["loc"] for error in detail] == [["query", "page_size"]]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"'])
def test_a_body_that_is_not_a_json_object_is_400(staff, raw):
    response = staff.post("/api/companies", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "detail" in response.json()


def test_list_is_paginated_newest_first(staff, make_company):
    created = [make_company(f"Paged {i}") for i in range(5)]
    response = staff.get("/api/companies", params={"search": "paged", "page": 2, "page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (5, 2, 2, 3)
    assert [item["id"] for item in body["items"]] == [created[2].id, created[1].id]


@pytest.mark.parametrize(
    "page, page_size, total, ids",
    [
        (1, 10, 5, [4, 3, 2, 1, 0]),
        (2, 3, 5, [1, 0]),
        (3, 2, 5, [0]),
        (4, 2, 5, []),
        (9, 2, 5, []),
        (1, 5, 5, [4, 3, 2, 1, 0]),
    ],
)
def test_list_total_is_exact_on_every_page(staff, make_company, page, page_size, total, ids):
    created = [make_company(f"Counted Page {i}") for i in range(5)]
    body = staff.get("/api/companies", params={"search": "counted page", "page": page, "page_size": page_size}).json()
    assert (body["total"], body["total_pages"]) == (total, -(-total // page_size))
    assert [item["id"] for item in body["items"]] == [created[i].id for i in ids]


def test_list_total_counts_every_company(staff, make_company):
    make_company("One More")
    body = staff.get("/api/companies", params={"page_size": 100}).json()
    assert body["total"] == Company.objects.filter(pk__gt=0).count() == len(body["items"])
    assert staff.get("/api/companies", params={"page_size": 1}).json()["total"] == body["total"]


def test_list_searches_name_and_email_case_insensitively(staff, make_company):
    make_company("Northwind", contact_email="info@northwind.test")
    make_company("Contoso", contact_email="hello@WIND.test")
    make_company("Fabrikam")
    names = {c["name"] for c in staff.get("/api/companies", params={"search": "WiNd"}).json()["items"]}
    assert names == {"Northwind", "Contoso"}


def test_list_search_treats_like_wildcards_literally(staff, make_company):
    make_company("100% Juice")
    make_company("1000 Juices")
    names = [c["name"] for c in staff.get("/api/companies", params={"search": "100%"}).json()["items"]]
    assert names == ["100% Juice"]


def test_list_filters_on_is_active(staff, make_company):
    make_company("Gone Filter", is_active=False)
    make_company("Here Filter")
    items = staff.get("/api/companies", params={"search": "filter", "is_active": "false"}).json()["items"]
    assert [c["name"] for c in items] == ["Gone Filter"]


@pytest.mark.parametrize("params", [{"page": 0}, {"page": -1}, {"page_size": 0}, {"page_size": 101}, {"page": 10**30}])
def test_list_rejects_out_of_range_pagination(staff, params):
    assert staff.get("/api/companies", params=params).status_code == 422


def test_detail_returns_the_company(staff, make_company):
    company = make_company("Detail Co")
    body = staff.get(f"/api/companies/{company.id}").json()
    assert body["id"] == company.id and body["name"] == "Detail Co"


@pytest.mark.parametrize("company_id", ["999999", str(2**63 - 1)])
def test_detail_of_a_missing_company_is_404(staff, company_id):
    assert staff.get(f"/api/companies/{company_id}").status_code == 404


def test_detail_with_an_id_beyond_bigint_is_a_client_error(staff):
    assert staff.get(f"/api/companies/{10**30}").status_code == 422


def test_patch_changes_only_the_given_fields(staff, make_company):
    company = make_company("Patch Co", contact_phone="123")
    response = staff.patch(f"/api/companies/{company.id}", json={"notes": "hello", "subscription_tier": "pro"})
    assert response.status_code == 200
    company.refresh_from_db()
    assert (company.notes, company.subscription_tier, company.contact_phone) == ("hello", "pro", "123")


def test_patch_renaming_rederives_the_slug(staff, make_company):
    company = make_company("Old Name")
    assert staff.patch(f"/api/companies/{company.id}", json={"name": "New Name"}).json()["slug"] == "new-name"


def test_patch_with_unknown_fields_is_422(staff, make_company):
    company = make_company("Strict Co")
    assert staff.patch(f"/api/companies/{company.id}", json={"slug": "mine"}).status_code == 422
    assert staff.patch(f"/api/companies/{company.id}", json={"folders_count": 3}).status_code == 422


def test_patch_to_a_taken_name_is_409_and_changes_nothing(staff, make_company):
    make_company("Taken")
    company = make_company("Mine", notes="before")
    response = staff.patch(f"/api/companies/{company.id}", json={"name": "taken", "notes": "after"})
    assert response.status_code == 409
    company.refresh_from_db()
    assert (company.name, company.notes) == ("Mine", "before")


def test_delete_removes_the_company(staff, make_company):
    company = make_company("Doomed")
    assert staff.delete(f"/api/companies/{company.id}").status_code == 204
    assert not Company.objects.filter(pk=company.pk).exists()


def test_delete_of_a_company_with_folders_is_409(staff, make_company):
    company = make_company("Has Folders")
    company.folders.create(name="a", path="/a")
    assert staff.delete(f"/api/companies/{company.id}").status_code == 409
    assert Company.objects.filter(pk=company.pk).exists()


def test_delete_of_the_default_company_is_409(staff, make_company):
    company = make_company("Default One", is_default=True)
    assert staff.delete(f"/api/companies/{company.id}").status_code == 409


def test_put_storage_sets_connection_and_path(staff, make_company, local_connection):
    company = make_company("Stored")
    body = {"storage_connection_id": local_connection.id, "storage_path": "stored/"}
    response = staff.put(f"/api/companies/{company.id}/storage", json=body)
    assert response.status_code == 200
    assert (response.json()["storage_connection_id"], response.json()["storage_path"]) == (
        local_connection.id,
        "/stored",  # canonical form (API.md, Paths)
    )


def test_put_storage_with_an_inactive_or_missing_connection_is_422(staff, make_company, local_connection):
    company = make_company("Unstored")
    local_connection.is_active = False
    local_connection.save()
    for connection_id in (local_connection.id, 987654):
        response = staff.put(f"/api/companies/{company.id}/storage", json={"storage_connection_id": connection_id})
        assert response.status_code == 422
    company.refresh_from_db()
    assert company.storage_connection_id is None


def test_huge_numbers_in_metadata_are_stored_and_read_back(staff):
    """jsonb keeps 1e300 as an exact number and hands it back as a 301-digit integer."""
    response = staff.post("/api/companies", json={"name": "Big Numbers", "metadata": {"big": 1e300}})
    assert response.status_code == 201
    again = staff.get(f"/api/companies/{response.json()['id']}")
    assert again.status_code == 200
    assert float(again.json()["metadata"]["big"]) == 1e300


def test_integers_beyond_64_bits_in_metadata_are_422(staff):
    response = staff.post("/api/companies", json={"name": "Too Big", "metadata": {"n": 2**64}})
    assert response.status_code == 422
    assert not Company.objects.filter(name="Too Big").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's (migration 0004)")
def test_search_can_use_the_trigram_indexes_instead_of_scanning(make_company):
    make_company("Indexed Search Co", contact_email="someone@indexed.example")
    searched = Company.objects.filter(Q(name__icontains="dexed") | Q(contact_email__icontains="dexed"))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show what it can use
        plan = searched.explain()
    assert "companies_company_name_trgm" in plan and "companies_company_contact_email_trgm" in plan
    assert [c.name for c in searched] == ["Indexed Search Co"]

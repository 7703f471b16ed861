"""Names compared as a reader compares them (NFKC, ignoring case), in the API: a look-alike
of a taken name is 409, never a second company or connection, never a 500."""

import unicodedata

import pytest
from django.db import connection

from companies.models import Company
from storage.models import StorageConnection

pytestmark = pytest.mark.django_db(transaction=True)

NFC = unicodedata.normalize("NFC", "Йод Ёлка")
NFD = unicodedata.normalize("NFD", "Йод Ёлка")


def test_the_two_spellings_differ_before_normalisation():
    assert NFC != NFD and len(NFD) > len(NFC)


def test_a_company_name_is_stored_nfkc(staff):
    response = staff.post("/api/companies", json={"name": NFD})
    assert response.status_code == 201
    assert response.json()["name"] == NFC
    assert Company.objects.get(pk=response.json()["id"]).name == NFC


@pytest.mark.parametrize(
    ("taken", "sent"),
    [(NFC, NFD), (NFD, NFC), ("Ｆｉｌｍ Ｃｏ", "Film Co"), ("ACME", "acme")],
    ids=["nfc-then-nfd", "nfd-then-nfc", "fullwidth", "ascii-case"],
)
def test_a_look_alike_of_a_taken_company_name_is_409(staff, taken, sent):
    assert staff.post("/api/companies", json={"name": taken}).status_code == 201
    response = staff.post("/api/companies", json={"name": sent})
    assert response.status_code == 409, response.text
    assert Company.objects.exclude(is_default=True).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's lower() folds ASCII letters only")
def test_a_taken_company_name_in_other_cyrillic_case_is_409(staff):
    assert staff.post("/api/companies", json={"name": NFC}).status_code == 201
    assert staff.post("/api/companies", json={"name": NFD.upper()}).status_code == 409


def test_renaming_a_company_to_a_look_alike_is_409(staff, make_company):
    make_company(NFC)
    other = make_company("Other")
    assert staff.patch(f"/api/companies/{other.id}", json={"name": NFD}).status_code == 409
    other.refresh_from_db()
    assert other.name == "Other"


def test_search_finds_a_name_typed_in_another_normal_form(staff):
    staff.post("/api/companies", json={"name": NFC})
    found = staff.get("/api/companies", params={"search": unicodedata.normalize("NFD", "Ёлка")}).json()
    assert [company["name"] for company in found["items"]] == [NFC]


@pytest.mark.parametrize(("taken", "sent"), [(NFC, NFD), ("Bucket", "BUCKET")], ids=["nfd", "case"])
def test_a_look_alike_of_a_taken_connection_name_is_409(staff, taken, sent):
    assert staff.post("/api/storage/connections", json={"name": taken, "provider": "minio"}).status_code == 201
    response = staff.post("/api/storage/connections", json={"name": sent, "provider": "minio"})
    assert response.status_code == 409, response.text
    assert StorageConnection.objects.filter(provider="minio").count() == 1


def test_a_member_cannot_learn_other_companies_names_by_renaming(make_company, member_of):
    """Renames are the operator's (issue 18, item 10): a member's rename to another company's
    name and to a name nobody has get the same 403, so neither tells it anything; sending its
    own name back unchanged is no rename."""
    own, other = make_company("Initech"), make_company("Globex")
    member = member_of(own)
    answers = [member.patch(f"/api/companies/{own.id}", json={"name": name}) for name in ("GLOBEX", "Nonexistent Corp")]
    assert [answer.status_code for answer in answers] == [403, 403]
    assert answers[0].json() == answers[1].json() == {"detail": "Only staff users may change: name."}
    unchanged = member.patch(f"/api/companies/{own.id}", json={"name": "Initech", "notes": "hello"})
    assert unchanged.status_code == 200 and unchanged.json()["notes"] == "hello"
    own.refresh_from_db()
    other.refresh_from_db()
    assert (own.name, other.name) == ("Initech", "Globex")

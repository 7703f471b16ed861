"""The company admin as a person uses it: a name whose slug or look-alike is taken, a storage
path or folder path that escapes, metadata the database cannot store: each a form error on the
page, never a 500, and nothing written."""

import unicodedata

import httpx
import pytest

from companies.models import Company
from storage.models import StorageFolder
from testing.admin import form_errors, send_form

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "/admin/companies/company/add/"
FORM = "company_form"


def add_company(admin, **fields) -> httpx.Response:
    return send_form(admin, ADD, FORM, **{"metadata": "{}", **fields})


def assert_refused(answer: httpx.Response, words: str) -> None:
    assert answer.status_code == 200, answer.text[:500]
    assert any(words in error for error in form_errors(answer)), form_errors(answer)


def test_a_company_added_in_the_admin_gets_its_slug(admin):
    assert add_company(admin, name="Acme Inc").status_code == 302
    assert Company.objects.get(name="Acme Inc").slug == "acme-inc"


def test_a_name_that_derives_a_taken_slug_is_a_form_error(admin, make_company):
    make_company("Acme Inc", slug="acme-inc")
    assert_refused(add_company(admin, name="Acme, Inc."), "acme-inc")
    assert not Company.objects.filter(name="Acme, Inc.").exists()


def test_renaming_to_a_name_that_derives_a_taken_slug_is_a_form_error(admin, make_company):
    make_company("Acme Inc", slug="acme-inc")
    other = make_company("Other Co", slug="other-co")
    answer = send_form(admin, f"/admin/companies/company/{other.pk}/change/", FORM, name="Acme, Inc.")
    assert_refused(answer, "acme-inc")
    other.refresh_from_db()
    assert (other.name, other.slug) == ("Other Co", "other-co")


@pytest.mark.parametrize(
    ("taken", "sent"),
    [
        (unicodedata.normalize("NFC", "Йод Ёлка"), unicodedata.normalize("NFD", "Йод Ёлка")),
        ("Acme", "ACME"),
        ("Film Co", "Ｆｉｌｍ Ｃｏ"),
    ],
    ids=["nfd", "case", "fullwidth"],
)
def test_a_look_alike_of_a_taken_name_is_a_form_error(admin, make_company, taken, sent):
    make_company(taken, slug="taken")
    assert_refused(add_company(admin, name=sent), "already exists")
    assert Company.objects.exclude(is_default=True).count() == 1


def test_a_name_is_stored_nfkc(admin):
    assert add_company(admin, name=unicodedata.normalize("NFD", "Йод Ёлка")).status_code == 302
    assert Company.objects.filter(name=unicodedata.normalize("NFC", "Йод Ёлка")).exists()


def test_the_storage_path_is_stored_canonical(admin):
    assert add_company(admin, name="Path Co", storage_path="./clients//path-co/").status_code == 302
    assert Company.objects.get(name="Path Co").storage_path == "/clients/path-co"


@pytest.mark.parametrize("storage_path", ["../../../etc", "a\\..\\b", "a/\x02"])
def test_an_escaping_storage_path_is_a_form_error(admin, storage_path):
    assert_refused(add_company(admin, name="Escape Co", storage_path=storage_path), "Path must not")
    assert not Company.objects.filter(name="Escape Co").exists()


def test_folders_added_inline_are_canonical_and_one_path_per_company(admin):
    inline = {"folders-0-name": "a", "folders-0-folder_type": "custom", "folders-0-files_count": "0"}
    answer = add_company(admin, name="Inline Co", **inline, **{"folders-0-path": "photos//x/"})
    assert answer.status_code == 302, form_errors(answer)
    assert list(StorageFolder.objects.values_list("path", flat=True)) == ["/photos/x"]

    escape = add_company(admin, name="Inline Escape", **inline, **{"folders-0-path": "../x"})
    assert_refused(escape, "'..'")
    assert not Company.objects.filter(name="Inline Escape").exists()


def test_two_inline_spellings_of_one_folder_path_are_a_form_error(admin):
    folder = {"name": "a", "folder_type": "custom", "files_count": "0", "total_size_bytes": "0"}
    inlines = {f"folders-{i}-{field}": value for i in (0, 1) for field, value in folder.items()}
    answer = add_company(
        admin,
        name="Twice Co",
        **inlines,
        **{"folders-TOTAL_FORMS": "2", "folders-0-path": "a/b", "folders-1-path": "/a/b/"},
    )
    assert_refused(answer, "duplicate")
    assert not Company.objects.filter(name="Twice Co").exists()


@pytest.mark.parametrize("metadata", ["{nope", "[1, 2]", '{"x": NaN}', '{"x": "nul\\u0000"}'])
def test_metadata_that_is_not_a_storable_object_is_a_form_error(admin, metadata):
    answer = add_company(admin, name="Meta Co", metadata=metadata)
    assert answer.status_code == 200, answer.text[:500]
    assert form_errors(answer)
    assert not Company.objects.filter(name="Meta Co").exists()

"""The storage admin as a person uses it (logged in through the login form, pages over HTTP to
the real server): credentials cannot be probed, bad input is a form error and never a 500 or
a log line with a secret, paths and names are stored in their canonical forms."""

import json
import logging

import httpx
import pytest
from django.contrib.auth.models import Permission
from django.db import connection

from storage.models import StorageConnection, StorageFolder
from testing.admin import form_errors, log_in, send_form

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "S3CR3T-q7-admin"
CREDENTIALS = {"endpoint": "minio.test:9000", "access_key": "ak", "secret_key": SECRET, "bucket": "b"}
ADD = "/admin/storage/storageconnection/add/"
CHANGELIST = "/admin/storage/storageconnection/"
FORM = "storageconnection_form"


@pytest.fixture
def minio(transactional_db):
    return StorageConnection.objects.create(name="Minio", provider="minio", credentials=CREDENTIALS)


@pytest.fixture
def viewer(live_url, django_user_model):
    """A staff user who may only view storage connections, companies and folders."""
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_storageconnection", "view_company", "view_storagefolder"])
    )
    with httpx.Client(base_url=live_url, timeout=30) as browser:
        log_in(browser, username="viewer", password="pw-viewer-123")
        yield browser


def test_a_view_only_user_sees_the_changelist_and_may_filter_on_other_fields(viewer, minio):
    page = viewer.get(CHANGELIST, params={"provider": "minio"})
    assert page.status_code == 200
    assert "1 storage connection" in page.text


@pytest.mark.parametrize(
    ("path", "lookup"),
    [
        (CHANGELIST, "credentials__secret_key__startswith"),
        (CHANGELIST, "credentials__startswith"),
        (CHANGELIST, "credentials"),
        ("/admin/companies/company/", "storage_connection__credentials__secret_key__startswith"),
        ("/admin/storage/storagefolder/", "company__storage_connection__credentials__secret_key"),
    ],
)
@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_any_credentials_lookup_is_refused(request, minio, who, path, lookup):
    browser = request.getfixturevalue(who)
    for guess in ["S3CR3T-q7", "S3CR3T-q8"]:  # the oracle: the two answers must not differ
        page = browser.get(path, params={lookup: guess})
        assert page.status_code == 400, page.text[:500]
        assert "storage connection" not in page.text


def test_credentials_sent_in_the_admin_are_stored_encrypted(admin):
    answer = send_form(admin, ADD, FORM, name="Added", provider="minio", credentials=json.dumps(CREDENTIALS))
    assert answer.status_code == 302, form_errors(answer)
    added = StorageConnection.objects.get(name="Added")
    assert added.decrypted_credentials() == CREDENTIALS
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM storage_storageconnection WHERE id = %s", [added.pk])
        assert SECRET not in cursor.fetchone()[0]


def test_a_nul_in_credentials_is_a_form_error_and_no_log_line_holds_them(admin, caplog):
    caplog.set_level(logging.INFO)
    credentials = json.dumps({**CREDENTIALS, "secret_key": SECRET + "\u0000"})  # the JSON escape \u0000
    answer = send_form(admin, ADD, FORM, name="Nul", provider="minio", credentials=credentials)
    assert answer.status_code == 200
    assert any("NUL" in error for error in form_errors(answer)), form_errors(answer)
    assert SECRET not in answer.text  # write-only: not even rendered back
    assert SECRET not in caplog.text
    assert not StorageConnection.objects.filter(name="Nul").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("credentials", "{not json"),
        ("credentials", '["a", "list"]'),
        ("credentials", '{"n": NaN}'),
        ("metadata", "{not json"),
        ("metadata", '"a string"'),
        ("metadata", '{"n": Infinity}'),
        ("metadata", '{"note": "nul\\u0000"}'),
        ("metadata", '{"big": 1' + "0" * 30 + "}"),
    ],
)
def test_invalid_json_is_a_form_error(admin, field, value):
    fields = {"name": "Bad Json", "provider": "minio", "metadata": "{}", field: value}
    answer = send_form(admin, ADD, FORM, **fields)
    assert answer.status_code == 200, answer.text[:500]
    assert form_errors(answer)
    assert not StorageConnection.objects.filter(name="Bad Json").exists()


def test_a_remote_base_path_is_stored_canonical(admin):
    answer = send_form(admin, ADD, FORM, name="Remote", provider="yandex_disk", base_path="./photos//2024/")
    assert answer.status_code == 302, form_errors(answer)
    assert StorageConnection.objects.get(name="Remote").base_path == "/photos/2024"


@pytest.mark.parametrize("base_path", ["../../etc", "a\\b", "/a/\x01"])
def test_an_escaping_remote_base_path_is_a_form_error(admin, base_path):
    answer = send_form(admin, ADD, FORM, name="Escape", provider="minio", base_path=base_path)
    assert answer.status_code == 200
    assert any("Path must not" in error for error in form_errors(answer)), form_errors(answer)
    assert not StorageConnection.objects.filter(name="Escape").exists()


@pytest.mark.parametrize("name", ["MINIO", "ｍｉｎｉｏ"])
def test_a_look_alike_of_a_taken_connection_name_is_a_form_error(admin, minio, name):
    answer = send_form(admin, ADD, FORM, name=name, provider="minio")
    assert answer.status_code == 200
    assert any("already exists" in error for error in form_errors(answer)), form_errors(answer)
    assert StorageConnection.objects.filter(provider="minio").count() == 1


def test_a_folder_path_is_stored_canonical_and_its_spellings_are_one_path(admin, make_company):
    company = make_company("Folder Admin Co")
    add = "/admin/storage/storagefolder/add/"
    answer = send_form(admin, add, "storagefolder_form", company=str(company.pk), name="a", path="a//b/")
    assert answer.status_code == 302, form_errors(answer)
    assert StorageFolder.objects.get().path == "/a/b"
    again = send_form(admin, add, "storagefolder_form", company=str(company.pk), name="b", path="./a/b")
    assert again.status_code == 200
    assert any("already exists" in error for error in form_errors(again)), form_errors(again)
    escape = send_form(admin, add, "storagefolder_form", company=str(company.pk), name="c", path="a/../../b")
    assert any("'..'" in error for error in form_errors(escape)), form_errors(escape)
    assert StorageFolder.objects.count() == 1


def test_a_view_only_user_cannot_run_the_test_action(viewer, local_connection):
    """The action declares its permission (change): it is not offered to a view-only user, and
    sending it anyway runs nothing and stores nothing."""
    page = viewer.get(CHANGELIST)
    assert page.status_code == 200 and "test_connections" not in page.text
    answer = viewer.post(
        CHANGELIST,
        data={
            "action": "test_connections",
            "index": "0",
            "_selected_action": [str(local_connection.pk)],
            "csrfmiddlewaretoken": viewer.cookies["csrftoken"],
        },
    )
    assert answer.status_code in (200, 302, 403), answer.text[:2000]
    local_connection.refresh_from_db()
    assert (local_connection.last_tested_at, local_connection.test_status) == (None, None)

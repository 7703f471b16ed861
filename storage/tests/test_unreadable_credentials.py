"""A connection whose credentials were encrypted under a key that is no longer configured breaks
no page (issue 18, item 4): credentials are decrypted only by the check and by key rotation;
the row can be read, changed, given new credentials and deleted in the API and the admin; its
check, rotate_credentials and `check --deploy --database default` name it. Against a real
uvicorn and PostgreSQL."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from storage.apps import check_readable_credentials
from storage.credentials import UnreadableCredentials
from storage.models import StorageConnection
from storage.providers import UNREADABLE_CREDENTIALS
from storage.tests.test_credentials import stored_column
from testing.admin import send_form

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIALS = {"endpoint": "8.8.8.8:443", "access_key": "ak", "secret_key": "S3CR3T-lost", "bucket": "arv-b"}


@pytest.fixture
def unreadable(settings) -> StorageConnection:
    """A minio connection encrypted under a key that has since been removed (the in-process
    server shares these settings)."""
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    connection = StorageConnection.objects.create(name="Lost key", provider="minio", credentials=CREDENTIALS)
    settings.CREDENTIALS_KEYS = []
    with pytest.raises(UnreadableCredentials):
        StorageConnection.objects.get(pk=connection.pk).decrypted_credentials()
    return connection


@pytest.fixture
def companies(make_company, unreadable):
    """One company on the unreadable connection, one on none."""
    return make_company("Uses it", storage_connection=unreadable), make_company("Other one")


def test_the_api_reads_changes_and_deletes_an_unreadable_connection(staff, unreadable, companies):
    base = f"/api/storage/connections/{unreadable.id}"
    listed = staff.get("/api/storage/connections")
    assert listed.status_code == 200 and unreadable.id in [item["id"] for item in listed.json()]
    assert staff.get(base).status_code == 200
    assert staff.get(f"{base}/stats").json()["companies_count"] == 1
    for company in companies:
        assert staff.get(f"/api/companies/{company.id}").status_code == 200

    renamed = staff.patch(base, json={"name": "Lost key, renamed"})
    assert renamed.status_code == 200, renamed.text
    checked = staff.post(f"{base}/test").json()
    assert (checked["status"], checked["message"]) == ("error", UNREADABLE_CREDENTIALS)
    assert StorageConnection.objects.get(pk=unreadable.pk).test_error == UNREADABLE_CREDENTIALS

    repaired = staff.patch(base, json={"credentials": {**CREDENTIALS, "secret_key": "new"}})
    assert repaired.status_code == 200, repaired.text
    assert StorageConnection.objects.get(pk=unreadable.pk).decrypted_credentials()["secret_key"] == "new"


def test_the_api_deletes_an_unreadable_connection(staff, unreadable):
    assert staff.delete(f"/api/storage/connections/{unreadable.id}").status_code == 204
    assert not StorageConnection.objects.filter(pk=unreadable.pk).exists()


def test_the_admin_pages_work_with_an_unreadable_connection(admin, unreadable, companies):
    pages = [
        "/admin/companies/company/",
        "/admin/companies/company/add/",
        *(f"/admin/companies/company/{company.pk}/change/" for company in companies),
        "/admin/storage/storageconnection/",
        f"/admin/storage/storageconnection/{unreadable.pk}/change/",
        "/admin/storage/storageconnection/add/",
    ]
    for page in pages:
        answer = admin.get(page)
        assert answer.status_code == 200, (page, answer.text[:2000])
        assert "S3CR3T" not in answer.text


def test_the_admin_saves_an_unreadable_connection_unchanged_or_with_new_credentials(admin, unreadable):
    page = f"/admin/storage/storageconnection/{unreadable.pk}/change/"
    before = stored_column(unreadable.pk)
    saved = send_form(admin, page, "storageconnection_form", name="Lost key 2", credentials="")
    assert saved.status_code == 302, saved.text[:3000]
    assert StorageConnection.objects.get(pk=unreadable.pk).name == "Lost key 2"
    assert stored_column(unreadable.pk) == before  # the same ciphertext, never decrypted

    new = '{"endpoint": "8.8.8.8:443", "access_key": "ak", "secret_key": "fresh", "bucket": "arv-b"}'
    saved = send_form(admin, page, "storageconnection_form", credentials=new)
    assert saved.status_code == 302, saved.text[:3000]
    assert StorageConnection.objects.get(pk=unreadable.pk).decrypted_credentials()["secret_key"] == "fresh"


def test_the_admin_deletes_an_unreadable_connection(admin, unreadable):
    page = f"/admin/storage/storageconnection/{unreadable.pk}/delete/"
    assert admin.get(page).status_code == 200
    csrf = admin.cookies["csrftoken"]
    deleted = admin.post(page, data={"post": "yes", "csrfmiddlewaretoken": csrf})
    assert deleted.status_code == 302, deleted.text[:2000]
    assert not StorageConnection.objects.filter(pk=unreadable.pk).exists()


def test_rotate_credentials_names_the_unreadable_and_rotates_the_rest(settings, unreadable):
    readable = StorageConnection.objects.create(name="Fine", provider="minio", credentials=CREDENTIALS)
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [new_key]  # the derived key (which encrypted "Fine") still decrypts
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 connection"):
        call_command("rotate_credentials", stdout=out, stderr=err)
    assert f"Connection {unreadable.pk} ('Lost key')" in err.getvalue()
    assert "Re-encrypted the credentials of" in out.getvalue()
    assert Fernet(new_key).decrypt(stored_column(readable.pk).encode())  # rotated all the same
    assert "S3CR3T" not in out.getvalue() + err.getvalue()


def test_a_deploy_check_lists_the_unreadable(unreadable):
    assert check_readable_credentials(None) == []  # only with --database
    [warning] = check_readable_credentials(None, databases=["default"])
    assert warning.id == "storage.W001"
    assert f"{unreadable.pk} (Lost key)" in warning.msg


def test_the_deploy_check_is_registered_for_check_deploy_database():
    from django.core.checks import registry

    assert check_readable_credentials in registry.registry.get_checks(include_deployment_checks=True)
    assert check_readable_credentials not in registry.registry.get_checks(include_deployment_checks=False)

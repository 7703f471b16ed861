"""Storage paths in one canonical form (storage.paths): the rule itself, the model layer and the
database's CHECK constraints that hold it against anything that bypasses the ORM."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from storage.models import StorageConnection, StorageFolder
from storage.paths import canonical_path

SAME_PATHS = ["a/b", "/a/b", "a//b/", "./a/b", "/a/./b/", "//a///b//", "a/b/."]
REFUSED = {
    "../etc/passwd": "'..' segment",
    "/a/../../b": "'..' segment",
    "a/..": "'..' segment",
    "a\\..\\..\\b": "backslash",
    "C:\\data": "backslash",
    "a/b\x07": "control characters",
    "a\nb": "control characters",
    "a\x7fb": "control characters",
    "a\x85b": "control characters",
}


@pytest.mark.parametrize("path", SAME_PATHS)
def test_spellings_of_one_path_have_one_canonical_form(path):
    assert canonical_path(path) == "/a/b"


@pytest.mark.parametrize("path", ["", "/", ".", "./", "//"])
def test_the_root_is_slash_and_a_folder_may_not_be_it(path):
    assert canonical_path(path) == "/"
    with pytest.raises(ValueError, match="root"):
        canonical_path(path, allow_root=False)


@pytest.mark.parametrize("path", ["/...", "/a.b/.c", "/ü/日本", "/a b/c"])
def test_names_that_only_look_special_are_kept(path):
    assert canonical_path(path) == path


@pytest.mark.parametrize(("path", "reason"), REFUSED.items())
def test_escapes_backslashes_and_control_characters_are_refused(path, reason):
    with pytest.raises(ValueError, match=reason):
        canonical_path(path)


@pytest.mark.django_db
def test_every_orm_write_of_a_folder_path_is_canonical(make_company):
    folder = StorageFolder.objects.create(company=make_company("Orm Co"), name="a", path="a//b/")
    folder.refresh_from_db()
    assert folder.path == "/a/b"
    assert StorageFolder.objects.filter(path="./a/b/").get() == folder  # lookups too


@pytest.mark.django_db
def test_an_orm_write_of_a_path_that_escapes_is_refused(make_company):
    with pytest.raises(ValidationError, match="'..' segment"):
        StorageFolder.objects.create(company=make_company("Orm Co"), name="a", path="../../etc")
    assert not StorageFolder.objects.exists()


@pytest.mark.django_db
def test_full_clean_canonicalizes_a_remote_base_path_and_keeps_a_local_one(tmp_path):
    remote = StorageConnection(name="Remote", provider="minio", base_path="photos//2024/")
    remote.full_clean()
    assert remote.base_path == "/photos/2024"
    inside_a_root = f"{tmp_path}/data/"  # the tests allow pytest's temporary directories
    local = StorageConnection(name="Local", provider="local_disk", base_path=inside_a_root)
    local.full_clean()
    assert local.base_path == inside_a_root  # a filesystem path: confined to the roots, not rewritten
    with pytest.raises(ValidationError) as refused:
        StorageConnection(name="Bad", provider="minio", base_path="a/../b").full_clean()
    assert "base_path" in refused.value.message_dict


BYPASSING_WRITES = [
    ("storage_storagefolder", "path", "a/b"),
    ("storage_storagefolder", "path", "/a/b/"),
    ("storage_storagefolder", "path", "/a//b"),
    ("storage_storagefolder", "path", "/a/./b"),
    ("storage_storagefolder", "path", "/a/../b"),
    ("storage_storagefolder", "path", "/a\\b"),
    ("storage_storagefolder", "path", "/"),
    ("companies_company", "storage_path", "x/"),
    ("companies_company", "storage_path", "/x/.."),
    ("storage_storageconnection", "base_path", "bucket//x"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("table", "column", "value"), BYPASSING_WRITES)
def test_the_database_refuses_a_non_canonical_path_written_with_raw_sql(table, column, value, make_company):
    company = make_company("Raw Co", storage_path="/ok")
    StorageFolder.objects.create(company=company, name="a", path="/ok")
    StorageConnection.objects.create(name="Raw", provider="minio", base_path="/ok")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", [value, "/ok"])


@pytest.mark.django_db
def test_the_database_accepts_canonical_paths_and_any_local_disk_path(make_company):
    company = make_company("Raw Co", storage_path="/ok")
    StorageFolder.objects.create(company=company, name="a", path="/ok")
    local = StorageConnection.objects.create(name="Raw", provider="local_disk", base_path="/srv")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE storage_storagefolder SET path = %s", ["/a/.b/.../c d"])
        cursor.execute("UPDATE companies_company SET storage_path = %s WHERE id = %s", ["/", company.pk])
        cursor.execute("UPDATE storage_storageconnection SET base_path = %s WHERE id = %s", ["srv//x/", local.pk])
        with pytest.raises(IntegrityError), transaction.atomic():  # but never a control character
            cursor.execute("UPDATE storage_storageconnection SET base_path = %s WHERE id = %s", ["/srv\x01", local.pk])

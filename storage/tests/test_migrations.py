"""The data migrations of issue 11 on rows written before them: names NFKC, paths canonical,
credentials encrypted (and back again); rows that cannot be rewritten stop the migration."""

import unicodedata

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from storage.migrations._canonical import CannotCanonicalize

BEFORE = [("companies", "0004_search_trigram_indexes"), ("storage", "0001_initial")]
SECRET = "S3CR3T-before-migration"
NFC, NFD = (unicodedata.normalize(form, "Йод Ёлка") for form in ("NFC", "NFD"))


class Migrator:
    def __init__(self) -> None:
        self.executor = MigrationExecutor(connection)

    def migrate(self, targets):
        self.executor.loader.build_graph()
        self.executor.migrate(targets)
        return self.executor.loader.project_state(targets).apps

    def latest(self):
        return self.migrate(self.executor.loader.graph.leaf_nodes())


@pytest.fixture
def migrator(transactional_db):
    migrator = Migrator()
    yield migrator
    migrator.latest()


def raw(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_existing_rows_are_rewritten_and_credentials_encrypted(migrator):
    old = migrator.migrate(BEFORE)
    Connection, Company, Folder = (
        old.get_model(*m)
        for m in [("storage", "StorageConnection"), ("companies", "Company"), ("storage", "StorageFolder")]
    )
    remote = Connection.objects.create(
        name="Ｂucket", provider="minio", base_path="photos//2024/", credentials={"secret_key": SECRET}
    )
    local = Connection.objects.create(name="Disk", provider="local_disk", base_path="/srv/data/")
    company = Company.objects.create(name=NFD, slug="yod", storage_path="./yod/")
    Folder.objects.create(company=company, name="a", path="a//b/")

    migrator.latest()
    assert raw("SELECT name, base_path FROM storage_storageconnection WHERE id = %s", [remote.pk]) == [
        ("Bucket", "/photos/2024")
    ]
    assert raw("SELECT base_path FROM storage_storageconnection WHERE id = %s", [local.pk]) == [("/srv/data/",)]
    assert raw("SELECT name, storage_path FROM companies_company WHERE id = %s", [company.pk]) == [(NFC, "/yod")]
    assert raw("SELECT path FROM storage_storagefolder") == [("/a/b",)]
    [(stored,)] = raw("SELECT credentials FROM storage_storageconnection WHERE id = %s", [remote.pk])
    assert SECRET not in stored

    from storage.models import StorageConnection

    assert StorageConnection.objects.get(pk=remote.pk).decrypted_credentials() == {"secret_key": SECRET}


def test_migrating_back_decrypts_the_credentials(migrator):
    from storage.models import StorageConnection

    connection_id = StorageConnection.objects.create(name="Back", provider="minio", credentials={"k": SECRET}).pk
    old = migrator.migrate([("storage", "0002_canonical_names_and_paths")])
    assert old.get_model("storage", "StorageConnection").objects.get(pk=connection_id).credentials == {"k": SECRET}


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ({"folders": ["a/b", "/a/b/"]}, "would all become '/a/b'"),
        ({"folders": ["../etc"]}, "'..' segment"),
        ({"companies": [NFC, NFD]}, f"would all become {NFC.lower()!r}"),
        ({"connections": ["Bucket", "BUCKET"]}, "would all become 'bucket'"),
    ],
    ids=["folder-collision", "folder-escape", "name-collision", "connection-name-collision"],
)
def test_rows_that_cannot_be_rewritten_stop_the_migration_and_are_named(migrator, rows, named):
    old = migrator.migrate(BEFORE)
    Company, Folder = old.get_model("companies", "Company"), old.get_model("storage", "StorageFolder")
    Connection = old.get_model("storage", "StorageConnection")
    base = Company.objects.create(name="Base", slug="base")
    for i, name in enumerate(rows.get("companies", [])):
        Company.objects.create(name=name, slug=f"c{i}")
    for name in rows.get("connections", []):
        Connection.objects.create(name=name, provider="minio")
    for i, path in enumerate(rows.get("folders", [])):
        Folder.objects.create(company=base, name=f"f{i}", path=path)

    with pytest.raises(CannotCanonicalize, match="fix them and run migrate again") as stopped:
        migrator.latest()
    assert named in str(stopped.value)
    Folder.objects.all().delete()  # the operator's fix, so the fixture can finish migrating
    Company.objects.exclude(pk=base.pk).delete()
    Connection.objects.filter(provider="minio").delete()

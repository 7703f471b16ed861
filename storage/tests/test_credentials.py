"""Storage credentials at rest (storage.credentials): encrypted, rotated, never filterable, and
never in a database error message (the database only ever sees ciphertext)."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from storage.apps import check_credentials_keys
from storage.credentials import derived_key
from storage.models import StorageConnection

pytestmark = pytest.mark.django_db

SECRET = "S3CR3T-q7-never-stored-in-clear"
CREDENTIALS = {"endpoint": "minio.test:9000", "access_key": "AKIA-ak", "secret_key": SECRET, "bucket": "b"}


def stored_column(pk: int) -> str:
    """The credentials column as the database holds it (raw SQL: no field in between)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM storage_storageconnection WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def minio():
    return StorageConnection.objects.create(name="Minio", provider="minio", credentials=CREDENTIALS)


def test_credentials_are_ciphertext_in_the_database_and_a_dict_in_python(minio):
    raw = stored_column(minio.pk)
    for clear in [SECRET, "AKIA-ak", "secret_key", "minio.test"]:
        assert clear not in raw
    assert raw.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
    assert StorageConnection.objects.get(pk=minio.pk).decrypted_credentials()["secret_key"] == SECRET


def test_the_same_credentials_never_give_the_same_ciphertext(minio):
    other = StorageConnection.objects.create(name="Twin", provider="minio", credentials=CREDENTIALS)
    assert stored_column(minio.pk) != stored_column(other.pk)


def test_by_default_the_key_is_derived_from_the_secret_key(minio, settings):
    token = stored_column(minio.pk)
    assert Fernet(derived_key(settings.SECRET_KEY)).decrypt(token.encode())
    settings.SECRET_KEY = "another-secret-key"
    loaded = StorageConnection.objects.get(pk=minio.pk)  # loading never decrypts: pages still work
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted") as refused:
        loaded.decrypted_credentials()
    assert SECRET not in str(refused.value) and token not in str(refused.value)


def test_rotation_old_key_still_decrypts_new_key_encrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old]
    connection_id = StorageConnection.objects.create(name="Rot", provider="minio", credentials=CREDENTIALS).pk
    assert Fernet(old).decrypt(stored_column(connection_id).encode())

    settings.CREDENTIALS_KEYS = [new, old]
    assert (
        StorageConnection.objects.get(pk=connection_id).decrypted_credentials() == CREDENTIALS
    )  # old key still decrypts
    out = io.StringIO()
    call_command("rotate_credentials", stdout=out)
    assert f"{StorageConnection.objects.count()} storage connection" in out.getvalue()
    assert SECRET not in out.getvalue()
    token = stored_column(connection_id).encode()
    assert Fernet(new).decrypt(token)  # now under the new key alone
    with pytest.raises(Exception):  # noqa: B017 (InvalidToken)
        Fernet(old).decrypt(token)

    settings.CREDENTIALS_KEYS = [new]  # the old key can go
    assert StorageConnection.objects.get(pk=connection_id).decrypted_credentials() == CREDENTIALS


def test_moving_from_the_derived_key_to_a_configured_one_needs_no_downtime(minio, settings):
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    assert (
        StorageConnection.objects.get(pk=minio.pk).decrypted_credentials() == CREDENTIALS
    )  # the derived key decrypts last


def test_a_key_that_is_not_a_fernet_key_is_a_configuration_error(settings):
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode(), "not-a-key"]
    [error] = check_credentials_keys(None)
    assert error.id == "storage.E001" and "key 2" in error.msg
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    assert check_credentials_keys(None) == []


@pytest.mark.parametrize(
    "lookup", ["credentials__secret_key__startswith", "credentials__secret_key", "credentials__contains"]
)
def test_credentials_cannot_be_filtered_on(minio, lookup):
    with pytest.raises(FieldError):
        StorageConnection.objects.filter(**{lookup: "S3"}).count()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite stores a NUL that PostgreSQL refuses")
def test_a_database_error_on_a_connection_write_never_carries_the_credentials(minio):
    """The database refuses this row (a NUL in metadata's jsonb) and says why, quoting what it
    got; it never got the credentials in clear, so its message cannot hold them."""
    minio.metadata = {"note": "bad\u0000"}  # past every validator: straight to the database
    minio.credentials = {**CREDENTIALS, "note": "bad\u0000"}
    with pytest.raises(DatabaseError) as refused, transaction.atomic():
        minio.save()
    message = f"{refused.value} {refused.value.__cause__!r}"
    assert SECRET not in message and "AKIA-ak" not in message


@pytest.mark.django_db(transaction=True)
def test_the_api_has_no_credentials_filter(staff):
    for name, secret in [("One", "S3CR3T-q7"), ("Two", "other")]:
        StorageConnection.objects.create(name=name, provider="minio", credentials={"secret_key": secret})
    everything = staff.get("/api/storage/connections").json()
    probe = staff.get("/api/storage/connections", params={"credentials__secret_key__startswith": "S3CR3T-q7"})
    assert probe.status_code == 200 and probe.json() == everything  # the parameter means nothing
    assert "S3CR3T" not in probe.text


def test_credentials_must_be_an_object_even_from_the_shell():
    with pytest.raises(TypeError, match="dict"):
        StorageConnection.objects.create(name="Text", provider="minio", credentials='{"a": 1}')

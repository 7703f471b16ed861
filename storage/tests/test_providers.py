"""Each provider's check against a real server on loopback (moto's S3, a Yandex Disk API, a
silent and a closed port) or the real disk: every outcome, and never a secret in a message."""

from __future__ import annotations

import os

import pytest

from storage.providers import check_connection

TIMEOUT = 2


def check(provider: str, base_path: str | None, credentials: dict, timeout: float = TIMEOUT):
    outcome = check_connection(provider, base_path, credentials, timeout)
    for secret in (credentials.get("secret_key"), credentials.get("oauth_token")):
        assert not secret or secret not in outcome.message, outcome
    return outcome


# --- minio ----------------------------------------------------------------------------------


def test_minio_bucket_that_exists_is_writable_and_no_probe_is_left(s3_server, s3_bucket):
    outcome = check("minio", "/reports/2026", s3_server.credentials(s3_bucket))
    assert (outcome.ok, outcome.writable) == (True, True), outcome
    assert s3_bucket in outcome.message
    assert s3_server.keys(s3_bucket) == []


def test_minio_probe_is_written_under_the_base_path(s3_server, s3_bucket):
    s3_server.s3.put_object(Bucket=s3_bucket, Key="reports/keep.txt", Body=b"x")
    assert check("minio", "/reports", s3_server.credentials(s3_bucket)).writable
    assert s3_server.keys(s3_bucket) == ["reports/keep.txt"]


def test_minio_with_a_region_given(s3_server, s3_bucket):
    outcome = check("minio", None, s3_server.credentials(s3_bucket, region="us-east-1", secure="false"))
    assert (outcome.ok, outcome.writable) == (True, True), outcome


def test_minio_missing_bucket(s3_server):
    outcome = check("minio", None, s3_server.credentials("no-such-bucket"))
    assert (outcome.ok, outcome.writable) == (False, False)
    assert "'no-such-bucket' does not exist" in outcome.message


@pytest.mark.parametrize(
    "changes",
    [
        {"secret_key": "wrong-secret-value-123"},
        {"access_key": "AKIAUNKNOWN000000000", "secret_key": "wrong-secret-value-123"},
        {"secret_key": "wrong-secret-value-123", "region": "us-east-1"},
    ],
    ids=["wrong secret", "unknown key", "wrong secret, region given"],
)
def test_minio_refused_keys(s3_server, s3_bucket, changes):
    outcome = check("minio", None, s3_server.credentials(s3_bucket, **changes))
    assert not outcome.ok
    assert "refused the access key or secret key" in outcome.message, outcome
    assert s3_server.keys(s3_bucket) == []


def test_minio_refused_endpoint(s3_server, closed_endpoint):
    outcome = check("minio", None, s3_server.credentials("arv-bucket", endpoint=closed_endpoint))
    assert not outcome.ok
    assert outcome.message == f"{closed_endpoint} refused the connection."


def test_minio_silent_endpoint_is_an_error_within_the_timeout(s3_server, silent_endpoint):
    outcome = check("minio", None, s3_server.credentials("arv-bucket", endpoint=silent_endpoint.endpoint))
    assert silent_endpoint.connected.is_set()
    assert not outcome.ok
    assert outcome.message == f"{silent_endpoint.endpoint} did not answer within {TIMEOUT} s."


def test_minio_https_against_a_plain_http_endpoint(s3_server, s3_bucket):
    outcome = check("minio", None, s3_server.credentials(s3_bucket, secure=True))
    assert not outcome.ok and "TLS" in outcome.message, outcome


def test_minio_missing_credentials_are_named():
    outcome = check("minio", None, {"endpoint": "127.0.0.1:9", "access_key": "a"})
    assert outcome.message == "Missing credentials: secret_key, bucket."


def test_minio_endpoint_that_is_a_url(s3_server, s3_bucket):
    outcome = check("minio", None, s3_server.credentials(s3_bucket, endpoint=f"http://{s3_server.endpoint}/x"))
    assert not outcome.ok and "Invalid endpoint" in outcome.message, outcome


# --- yandex_disk ----------------------------------------------------------------------------


def test_yandex_disk_accepted_token_and_folder(yandex_disk):
    yandex_disk.resources["/arv"] = "dir"
    outcome = check("yandex_disk", "/arv", {"oauth_token": yandex_disk.token})
    assert (outcome.ok, outcome.writable) == (True, True), outcome
    assert "/v1/disk/resources?path=%2Farv&fields=type%2Cpath" in yandex_disk.requests


def test_yandex_disk_without_a_base_path_checks_the_disk(yandex_disk):
    outcome = check("yandex_disk", None, {"oauth_token": yandex_disk.token})
    assert (outcome.ok, outcome.writable) == (True, True), outcome
    assert yandex_disk.requests == ["/v1/disk/"]


def test_yandex_disk_full_disk_is_not_writable(yandex_disk):
    yandex_disk.used_space = yandex_disk.total_space
    outcome = check("yandex_disk", None, {"oauth_token": yandex_disk.token})
    assert (outcome.ok, outcome.writable) == (True, False), outcome
    assert "full" in outcome.message


def test_yandex_disk_missing_folder(yandex_disk):
    outcome = check("yandex_disk", "/missing", {"oauth_token": yandex_disk.token})
    assert (outcome.ok, outcome.message) == (False, "/missing does not exist on the Yandex Disk.")


def test_yandex_disk_base_path_that_is_a_file(yandex_disk):
    yandex_disk.resources["/notes.txt"] = "file"
    outcome = check("yandex_disk", "/notes.txt", {"oauth_token": yandex_disk.token})
    assert (outcome.ok, outcome.message) == (False, "/notes.txt on the Yandex Disk is not a folder.")


def test_yandex_disk_rejected_token(yandex_disk):
    outcome = check("yandex_disk", None, {"oauth_token": "not-the-token-42"})
    assert (outcome.ok, outcome.message) == (False, "Yandex Disk refused the OAuth token (401).")


def test_yandex_disk_silent_api(settings, silent_endpoint):
    settings.YANDEX_DISK_API_URL = f"http://{silent_endpoint.endpoint}"
    outcome = check("yandex_disk", None, {"oauth_token": "t0ken-secret"})
    assert (outcome.ok, outcome.message) == (False, f"{silent_endpoint.endpoint} did not answer within {TIMEOUT} s.")


def test_yandex_disk_refused_api(settings, closed_endpoint):
    settings.YANDEX_DISK_API_URL = f"http://{closed_endpoint}"
    outcome = check("yandex_disk", None, {"oauth_token": "t0ken-secret"})
    assert (outcome.ok, outcome.message) == (False, f"{closed_endpoint} refused the connection.")


# --- local_disk -----------------------------------------------------------------------------


def test_local_disk_writable_directory_leaves_nothing(storage_root):
    outcome = check("local_disk", str(storage_root), {})
    assert (outcome.ok, outcome.writable) == (True, True)
    assert os.listdir(storage_root) == []


@pytest.mark.parametrize("path", ["/etc", "/tmp", "/etc/shadow", "relative/dir", "/"])
def test_local_disk_outside_the_roots_is_refused_untouched(path):
    outcome = check("local_disk", path, {})
    assert not outcome.ok
    assert "outside the storage roots" in outcome.message or "not an absolute path" in outcome.message


def test_local_disk_dot_dot_out_of_a_root_is_refused(storage_root):
    assert not check("local_disk", f"{storage_root}/../../../etc", {}).ok


def test_local_disk_symlink_outward_is_refused_and_nothing_is_touched(storage_root, tmp_path_factory):
    outside = tmp_path_factory.getbasetemp().parent.parent / f"arv-outside-{os.getpid()}"
    outside.mkdir(exist_ok=True)
    try:
        (storage_root / "escape").symlink_to(outside)
        outcome = check("local_disk", str(storage_root / "escape"), {})
        assert not outcome.ok and "outside the storage roots" in outcome.message
        assert os.listdir(outside) == []
    finally:
        outside.rmdir()


def test_local_disk_symlink_inside_the_roots_is_fine(storage_root):
    (storage_root / "real").mkdir()
    (storage_root / "alias").symlink_to(storage_root / "real")
    assert check("local_disk", str(storage_root / "alias"), {}).writable


def test_local_disk_roots_come_from_settings(settings, storage_root):
    settings.LOCAL_STORAGE_ROOTS = [storage_root / "only"]
    (storage_root / "only").mkdir()
    (storage_root / "other").mkdir()
    assert check("local_disk", str(storage_root / "only"), {}).ok
    assert not check("local_disk", str(storage_root / "other"), {}).ok


def test_minio_invalid_bucket_name(s3_server):
    outcome = check("minio", None, s3_server.credentials("b"))
    assert not outcome.ok and "Invalid bucket name" in outcome.message, outcome

"""Each provider's check against a real server on loopback (moto's S3, a Yandex Disk API, a
silent and a closed port, a fake S3 that misbehaves) or the real disk: every outcome, never a
secret in a message, bounded in time, memory and number, and only to allowed addresses."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from storage.providers import BUSY, check_connection, minio
from storage.providers.local_disk import open_beneath
from storage.providers.remote import MAX_ANSWER_BYTES, AnswerTooLarge, CheckClient, Deadline

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


def no_s3_answer(endpoint: str, timeout: float = TIMEOUT) -> str:
    """The one message for anything that is not a well-formed S3 answer (storage.providers.minio)."""
    return minio.no_answer({"endpoint": endpoint}, timeout).message


@pytest.mark.parametrize("where", ["closed", "silent", "tls", "not_s3", "redirect", "hangup"])
def test_minio_anything_but_an_s3_answer_gets_one_message(
    where, s3_server, s3_bucket, closed_endpoint, silent_endpoint, fake_s3
):
    """No oracle: a closed port, a silent one, TLS against plain HTTP, a web server's 404, a
    redirect and a hang-up all read the same, so a check cannot tell services apart."""
    credentials = {
        "closed": lambda: s3_server.credentials("arv-bucket", endpoint=closed_endpoint),
        "silent": lambda: s3_server.credentials("arv-bucket", endpoint=silent_endpoint.endpoint),
        "tls": lambda: s3_server.credentials(s3_bucket, secure=True),
    }.get(where) or (lambda: fake_s3(where).credentials())
    given = credentials()
    outcome = check("minio", None, given)
    assert (outcome.ok, outcome.message) == (False, no_s3_answer(given["endpoint"])), outcome


def test_minio_a_non_s3_answer_gets_no_probe_write(fake_s3):
    endpoint = fake_s3("not_s3")
    assert not check("minio", "/x", endpoint.credentials()).ok
    assert "PUT" not in endpoint.requests and "DELETE" not in endpoint.requests


def test_minio_a_huge_answer_to_the_probe_put_is_cut_off_at_the_cap(fake_s3):
    """The probe PUT answered 200 with a 400 MiB body: the check reads at most 64 KiB of it,
    hangs up and fails; only what the socket buffers took was ever sent."""
    endpoint = fake_s3("huge")
    outcome = check("minio", None, endpoint.credentials())
    assert (outcome.ok, outcome.message) == (False, no_s3_answer(endpoint.endpoint)), outcome
    assert endpoint.requests == ["HEAD", "PUT"]
    assert endpoint.closed.wait(10), "the check never hung up"
    assert endpoint.bytes_sent < 32 * 2**20 < endpoint.huge_bytes


def test_the_client_reads_no_more_than_the_cap(fake_s3):
    endpoint = fake_s3("huge")
    client = CheckClient(Deadline(TIMEOUT), confined=True)
    with pytest.raises(AnswerTooLarge, match=f"over {MAX_ANSWER_BYTES} bytes"):
        client.request("PUT", f"http://{endpoint.endpoint}/arv-fake/key", body=b"")


def arv_check_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("arv-check-")]


def test_minio_a_slow_drip_ends_at_the_deadline_and_its_socket_is_closed(fake_s3):
    """Bytes every 0.1 s never trip a per-read timeout: the deadline closes the socket."""
    endpoint = fake_s3("drip")
    outcome = check("minio", None, endpoint.credentials(), timeout=1)
    assert (outcome.ok, outcome.message) == (False, no_s3_answer(endpoint.endpoint, 1)), outcome
    assert endpoint.closed.wait(5), "the check's connection is still open"
    assert arv_check_threads() == []  # the check's thread ended with its socket


def test_yandex_disk_a_slow_drip_ends_at_the_deadline(settings, fake_s3):
    endpoint = fake_s3("drip")
    settings.YANDEX_DISK_API_URL = f"http://{endpoint.endpoint}"
    outcome = check("yandex_disk", None, {"oauth_token": "t0ken-secret"}, timeout=1)
    assert (outcome.ok, outcome.message) == (False, f"{endpoint.endpoint} did not answer within 1 s.")
    assert endpoint.closed.wait(5) and arv_check_threads() == []


def test_yandex_disk_a_huge_answer_is_cut_off_at_the_cap(settings, fake_s3):
    endpoint = fake_s3("huge")
    settings.YANDEX_DISK_API_URL = f"http://{endpoint.endpoint}"
    outcome = check("yandex_disk", None, {"oauth_token": "t0ken-secret"})
    # The fake answers GET as it answers a PUT: 200 and a body without end.
    assert (outcome.ok, outcome.message) == (False, f"{endpoint.endpoint} answered with more than 64 KiB.")
    assert endpoint.bytes_sent < 32 * 2**20


def test_checks_beyond_the_bound_are_refused_at_once(settings, fake_s3):
    """ARV_STORAGE_TEST_CONCURRENCY=2 and four checks at once against a slow drip: two run
    (and end at the deadline), two are answered at once without a connection."""
    settings.STORAGE_TEST_CONCURRENCY = 2
    endpoint = fake_s3("drip")
    start = threading.Barrier(4)

    def run(_: int):
        start.wait()
        return check_connection("minio", None, endpoint.credentials(), 1.5)

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(run, range(4)))
    messages = sorted(outcome.message for outcome in outcomes)
    assert messages == sorted([BUSY, BUSY, no_s3_answer(endpoint.endpoint, 1.5), no_s3_answer(endpoint.endpoint, 1.5)])
    assert endpoint.requests.count("HEAD") == 2  # one per check that ran
    assert check_connection("local_disk", "/nowhere", {}, 1).message != BUSY  # the slots are free again


# --- minio: only allowed addresses, checked before connecting ------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_minio_an_endpoint_outside_the_allowed_networks_is_never_contacted(settings, fake_s3, host):
    settings.STORAGE_ALLOWED_NETWORKS = []  # the default: public addresses only
    endpoint = fake_s3("not_s3")
    port = endpoint.endpoint.rsplit(":", 1)[1]
    outcome = check("minio", None, endpoint.credentials(endpoint=f"{host}:{port}"))
    assert not outcome.ok and "does not connect to" in outcome.message, outcome
    assert endpoint.connections == 0


def test_minio_connects_to_the_address_it_checked(monkeypatch, fake_s3):
    """A name that resolves to an allowed address first and to another one later (DNS
    rebinding) is looked up once: every connection (two here: the HEAD's is closed by the
    server) goes to the address checked, and the requests still name the host."""
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "s3.rebinding.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    endpoint = fake_s3("huge")
    name = f"s3.rebinding.test:{endpoint.endpoint.rsplit(':', 1)[1]}"
    check("minio", None, endpoint.credentials(endpoint=name))
    assert (endpoint.connections, endpoint.requests, endpoint.hosts) == (2, ["HEAD", "PUT"], [name, name])
    assert lookups == ["s3.rebinding.test"]


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


def outside_directory(tmp_path_factory, name: str):
    """A directory outside ARV_LOCAL_STORAGE_ROOTS (pytest's roots are inside them)."""
    outside = tmp_path_factory.getbasetemp().parent.parent / f"{name}-{os.getpid()}"
    (outside / "b").mkdir(parents=True, exist_ok=True)
    return outside


def test_open_beneath_refuses_a_symlink_in_the_middle(storage_root, tmp_path_factory):
    outside = outside_directory(tmp_path_factory, "arv-middle")
    try:
        (storage_root / "a").symlink_to(outside)
        with pytest.raises(OSError) as refused:
            open_beneath(str(storage_root), ["a", "b"])
        assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)
        (storage_root / "real" / "b").mkdir(parents=True)
        os.close(open_beneath(str(storage_root), ["real", "b"]))  # real directories open
    finally:
        shutil.rmtree(outside)


def test_local_disk_a_middle_component_swapped_for_a_symlink_after_resolving_touches_nothing(
    storage_root, tmp_path_factory, monkeypatch
):
    """The race the probe must survive: the path resolved inside the roots, then a middle
    component became a symlink outward before the directory was opened. (The resolution is
    made to return what it returned before the swap.)"""
    outside = outside_directory(tmp_path_factory, "arv-swapped")
    try:
        (storage_root / "a").symlink_to(outside)  # the swap, already done
        before_the_swap = str(storage_root / "a" / "b")
        real_realpath = os.path.realpath
        monkeypatch.setattr(
            os.path, "realpath", lambda path, **kw: path if path == before_the_swap else real_realpath(path, **kw)
        )
        outcome = check("local_disk", before_the_swap, {})
        assert not outcome.ok and "nothing was touched" in outcome.message, outcome
        assert os.listdir(outside / "b") == []
    finally:
        shutil.rmtree(outside)

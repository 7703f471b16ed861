"""POST /api/storage/connections/{id}/test and the admin's "Test selected storage connections"
against real storage servers on loopback; local_disk paths confined to the allowed roots; no
database worker held while a check waits (a real uvicorn with one worker)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from arv.auth.tokens import token_issue
from storage.models import StorageConnection
from storage.providers.minio import no_answer
from testing.admin import log_in, parse_page
from testing.servers import in_fresh_django

pytestmark = pytest.mark.django_db(transaction=True)


def minio_connection(name: str, credentials: dict, base_path: str | None = None) -> StorageConnection:
    return StorageConnection.objects.create(name=name, provider="minio", base_path=base_path, credentials=credentials)


# --- the API's check ----------------------------------------------------------------------


def test_a_minio_connection_added_and_tested_through_the_api(staff, s3_server, s3_bucket):
    created = staff.post(
        "/api/storage/connections",
        json={"name": "S3", "provider": "minio", "base_path": "/arv", "credentials": s3_server.credentials(s3_bucket)},
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    body = staff.post(f"/api/storage/connections/{connection_id}/test").json()
    assert (body["status"], body["writable"]) == ("success", True), body
    assert s3_server.keys(s3_bucket) == []
    connection = StorageConnection.objects.get(pk=connection_id)
    assert (connection.test_status, connection.test_error) == ("success", None)


def test_a_minio_connection_with_refused_keys_is_stored_as_failed(staff, s3_server, s3_bucket):
    secret = "not-the-secret-S3CR3T"
    connection = minio_connection("S3 bad", s3_server.credentials(s3_bucket, secret_key=secret))
    response = staff.post(f"/api/storage/connections/{connection.id}/test")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["writable"]) == ("error", False)
    assert "refused the access key or secret key" in body["message"] and secret not in response.text
    connection.refresh_from_db()
    assert connection.test_status == "error" and connection.test_error == body["message"]


def test_a_yandex_disk_connection_tested_through_the_api(staff, yandex_disk):
    yandex_disk.resources["/arv"] = "dir"
    connection = StorageConnection.objects.create(
        name="Yandex", provider="yandex_disk", base_path="/arv", credentials={"oauth_token": yandex_disk.token}
    )
    body = staff.post(f"/api/storage/connections/{connection.id}/test").json()
    assert (body["status"], body["writable"]) == ("success", True), body
    yandex_disk.resources.pop("/arv")
    body = staff.post(f"/api/storage/connections/{connection.id}/test").json()
    assert (body["status"], body["message"]) == ("error", "/arv does not exist on the Yandex Disk.")


# --- what a check may cost and where it may go (issue 18, items 2 and 3) -------------------


def test_a_huge_answer_to_the_probe_put_ends_the_check_cleanly(staff, fake_s3):
    endpoint = fake_s3("huge")
    connection = minio_connection("Huge", endpoint.credentials())
    answer = staff.post(f"/api/storage/connections/{connection.id}/test")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["message"]) == (
        "error",
        no_answer(endpoint.credentials(), 10).message,
    )
    assert endpoint.closed.wait(10) and endpoint.bytes_sent < 32 * 2**20 < endpoint.huge_bytes


def test_a_slow_drip_check_ends_at_the_deadline_and_closes_its_socket(staff, fake_s3, settings):
    settings.STORAGE_TEST_TIMEOUT = 1  # the in-process server's setting too
    endpoint = fake_s3("drip")
    connection = minio_connection("Drip", endpoint.credentials())
    answer = staff.post(f"/api/storage/connections/{connection.id}/test")
    assert answer.json()["message"] == no_answer(endpoint.credentials(), 1).message
    assert endpoint.closed.wait(5), "the check's connection is still open"


REFUSED_ENDPOINTS = [
    "localhost:9000",
    "127.0.0.1:9000",
    "[::1]:9000",
    "[::ffff:127.0.0.1]:9000",
    "[::127.0.0.1]:9000",
    "0.0.0.0:9000",
    "10.0.0.1:9000",
    "192.168.0.10:9000",
    "169.254.169.254:80",
    "[fe80::1]:9000",
    "[fd00::1]:9000",
    "224.0.0.1:9000",
]


@pytest.mark.parametrize("endpoint", REFUSED_ENDPOINTS)
def test_a_minio_endpoint_outside_the_allowed_networks_is_422(staff, settings, endpoint):
    """Refused on resolution when stored: nothing connects to it (no test traffic leaves loopback)."""
    settings.STORAGE_ALLOWED_NETWORKS = []  # the default: public addresses only
    credentials = {"endpoint": endpoint, "access_key": "a", "secret_key": "s", "bucket": "arv-b"}
    created = staff.post(
        "/api/storage/connections", json={"name": "Inside", "provider": "minio", "credentials": credentials}
    )
    assert created.status_code == 422, created.text
    assert created.json()["detail"][0]["loc"] == ["body", "credentials"]
    assert "ARV_STORAGE_ALLOWED_NETWORKS" in created.json()["detail"][0]["msg"]
    assert not StorageConnection.objects.filter(name="Inside").exists()
    stored = minio_connection("Stored", {**credentials, "endpoint": "8.8.8.8:443"})
    moved = staff.patch(f"/api/storage/connections/{stored.id}", json={"credentials": credentials})
    assert moved.status_code == 422, moved.text
    assert StorageConnection.objects.get(pk=stored.pk).decrypted_credentials()["endpoint"] == "8.8.8.8:443"


def test_the_admin_refuses_a_minio_endpoint_outside_the_allowed_networks(live_url, superuser, settings):
    settings.STORAGE_ALLOWED_NETWORKS = []
    credentials = '{"endpoint": "localhost:9000", "access_key": "a", "secret_key": "s", "bucket": "arv-b"}'
    with admin_session(live_url) as browser:
        page = browser.get("/admin/storage/storageconnection/add/")
        form = parse_page(page.text).forms["storageconnection_form"]
        fields = {**dict(form["fields"]), "name": "Admin inside", "provider": "minio", "base_path": ""}
        fields.update(credentials=credentials, metadata="{}")
        answer = browser.post("/admin/storage/storageconnection/add/", data=fields)
    assert answer.status_code == 200 and "does not connect to" in answer.text  # the form again, with its error
    assert not StorageConnection.objects.filter(name="Admin inside").exists()


def test_a_stored_endpoint_that_is_no_longer_allowed_is_never_contacted(start_server, staff_user, fake_s3):
    """A server whose operator allows public addresses only (ARV_STORAGE_ALLOWED_NETWORKS
    empty) refuses the check of a loopback endpoint stored before: no connection is made."""
    endpoint = fake_s3("not_s3")
    connection = minio_connection("Was allowed", endpoint.credentials())
    server = start_server(ARV_STORAGE_ALLOWED_NETWORKS="")
    headers = {"Authorization": f"Bearer {token_issue(user=staff_user)[1]}"}
    answer = httpx.post(f"{server.url}/api/storage/connections/{connection.id}/test", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "error" and "does not connect to" in answer.json()["message"]
    assert endpoint.connections == 0


def test_a_connection_without_its_credentials_names_them(staff):
    connection = StorageConnection.objects.create(name="Empty", provider="yandex_disk")
    body = staff.post(f"/api/storage/connections/{connection.id}/test").json()
    assert (body["status"], body["message"]) == ("error", "Missing credentials: oauth_token.")


def test_a_local_disk_that_became_a_symlink_outward_is_an_error_and_untouched(
    staff, local_connection, tmp_path_factory
):
    outside = tmp_path_factory.getbasetemp().parent.parent / "arv-outward-target"
    outside.mkdir(exist_ok=True)
    try:
        inside = tmp_path_factory.mktemp("later-a-link")
        inside.rmdir()
        inside.symlink_to(outside)  # after it was saved, the directory became a link out of the roots
        StorageConnection.objects.filter(pk=local_connection.pk).update(base_path=str(inside))
        body = staff.post(f"/api/storage/connections/{local_connection.id}/test").json()
        assert body["status"] == "error" and "outside the storage roots" in body["message"], body
        assert list(outside.iterdir()) == []
    finally:
        outside.rmdir()


# --- local_disk paths: inside the roots or 422 --------------------------------------------


@pytest.mark.parametrize("path", ["/etc", "/tmp", "/etc/passwd", "relative/path", "{root}/../../../etc"])
def test_creating_a_local_disk_outside_the_roots_is_422(staff, storage_root, path):
    body = {"name": "Escape", "provider": "local_disk", "base_path": path.format(root=storage_root)}
    response = staff.post("/api/storage/connections", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "base_path"]
    assert not StorageConnection.objects.filter(name="Escape").exists()


def test_a_symlink_out_of_the_roots_is_422(staff, storage_root):
    (storage_root / "link").symlink_to("/etc")
    body = {"name": "Link", "provider": "local_disk", "base_path": str(storage_root / "link")}
    assert staff.post("/api/storage/connections", json=body).status_code == 422


def test_a_directory_inside_the_roots_is_accepted(staff, storage_root):
    body = {"name": "Inside", "provider": "local_disk", "base_path": str(storage_root / "a")}
    assert staff.post("/api/storage/connections", json=body).status_code == 201


def test_moving_a_local_disk_outside_the_roots_is_422_and_changes_nothing(staff, local_connection):
    for change in ({"base_path": "/etc"}, {"provider": "local_disk", "base_path": "/var"}):
        response = staff.patch(f"/api/storage/connections/{local_connection.id}", json=change)
        assert response.status_code == 422, response.text
    minio = StorageConnection.objects.create(name="Was S3", provider="minio", base_path="/etc")
    assert staff.patch(f"/api/storage/connections/{minio.id}", json={"provider": "local_disk"}).status_code == 422
    local_connection.refresh_from_db()
    minio.refresh_from_db()
    assert (local_connection.base_path, minio.provider) != ("/etc", "local_disk")


STORAGE_SETTINGS = "s.LOCAL_STORAGE_ROOTS, s.LOCAL_STORAGE_ROOT, s.STORAGE_TEST_TIMEOUT, s.YANDEX_DISK_API_URL"


def storage_settings(printed: str = STORAGE_SETTINGS, **env: str) -> subprocess.CompletedProcess:
    """Settings as a fresh process reads them (by default LOCAL_STORAGE_ROOTS, LOCAL_STORAGE_ROOT,
    STORAGE_TEST_TIMEOUT and YANDEX_DISK_API_URL), "|"-separated."""
    return in_fresh_django(
        f"from django.conf import settings as s; print({printed}, sep='|')", {"DJANGO_SECRET_KEY": "k", **env}
    )


def test_the_new_check_settings_as_a_fresh_process_reads_them():
    def read(**env: str) -> str:
        printed = "s.STORAGE_TEST_CONCURRENCY, [str(n) for n in s.STORAGE_ALLOWED_NETWORKS]"
        return storage_settings(printed, **env).stdout.strip()

    assert read() == "4|[]"  # public addresses only
    chosen = read(ARV_STORAGE_TEST_CONCURRENCY="2", ARV_STORAGE_ALLOWED_NETWORKS="10.20.0.0/16, fd00::/8")
    assert chosen == "2|['10.20.0.0/16', 'fd00::/8']"


def test_storage_settings_defaults_and_overrides():
    defaults = storage_settings(ARV_LOCAL_STORAGE_ROOT="/srv/arv")
    assert defaults.stdout.split("|") == ["[PosixPath('/srv/arv')]", "/srv/arv", "10", "https://cloud-api.yandex.net\n"]
    chosen = storage_settings(
        ARV_LOCAL_STORAGE_ROOTS="/srv/a, /srv/b", ARV_STORAGE_TEST_TIMEOUT="2.5", ARV_YANDEX_DISK_API_URL="http://y"
    )
    assert chosen.stdout.split("|")[0::2] == ["[PosixPath('/srv/a'), PosixPath('/srv/b')]", "2.5"]
    assert chosen.stdout.split("|")[3] == "http://y\n"


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"ARV_LOCAL_STORAGE_ROOTS": "/srv/a,relative"}, "ARV_LOCAL_STORAGE_ROOTS must name absolute paths"),
        ({"ARV_STORAGE_TEST_TIMEOUT": "soon"}, "ARV_STORAGE_TEST_TIMEOUT='soon' is not a number"),
        ({"ARV_STORAGE_TEST_CONCURRENCY": "0"}, "ARV_STORAGE_TEST_CONCURRENCY='0' must be at least 1"),
        ({"ARV_STORAGE_ALLOWED_NETWORKS": "10.0.0.0/8, intranet"}, "ARV_STORAGE_ALLOWED_NETWORKS: 'intranet'"),
        ({"ARV_STORAGE_ALLOWED_NETWORKS": "10.0.0.5/8"}, "ARV_STORAGE_ALLOWED_NETWORKS: 10.0.0.5/8 has host bits set"),
    ],
)
def test_bad_storage_settings_are_a_startup_error(env, error):
    result = storage_settings(**env)
    assert result.returncode != 0 and error in result.stderr, result.stderr


# --- 201 Created answers say where the new object is ---------------------------------------


def test_created_answers_carry_the_new_objects_location(staff, live_url, storage_root):
    created = staff.post("/api/companies", json={"name": "Located Co"})
    assert created.status_code == 201
    assert created.headers["Location"] == f"{live_url}/api/companies/{created.json()['id']}"
    assert staff.get(created.headers["Location"]).json()["name"] == "Located Co"

    body = {"name": "Located disk", "provider": "local_disk", "base_path": str(storage_root)}
    created = staff.post("/api/storage/connections", json=body)
    assert created.status_code == 201
    assert created.headers["Location"] == f"{live_url}/api/storage/connections/{created.json()['id']}"
    assert staff.get(created.headers["Location"]).json()["name"] == "Located disk"


# --- the admin ----------------------------------------------------------------------------


@contextmanager
def admin_session(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as browser:
        log_in(browser)
        yield browser


def run_test_action(browser: httpx.Client, *connections: StorageConnection) -> httpx.Response:
    page = browser.get("/admin/storage/storageconnection/")
    form = parse_page(page.text).forms["changelist-form"]
    fields = {name: value for name, value in form["fields"] if name not in ("action", "_selected_action")}
    fields.update(action="test_connections", index="0")
    fields["_selected_action"] = [str(connection.pk) for connection in connections]
    return browser.post("/admin/storage/storageconnection/", data=fields)


def test_the_admin_action_tests_minio_and_yandex_disk(live_url, superuser, s3_server, s3_bucket, yandex_disk):
    good = minio_connection("Good S3", s3_server.credentials(s3_bucket))
    missing = minio_connection("No bucket", s3_server.credentials("arv-no-such-bucket"))
    disk = StorageConnection.objects.create(
        name="Disk Y", provider="yandex_disk", credentials={"oauth_token": "wrong-token"}
    )
    with admin_session(live_url) as browser:
        answer = run_test_action(browser, good, missing, disk)
        assert answer.status_code == 302, answer.text[:2000]
        page = browser.get(answer.headers["Location"]).text
    assert f"Good S3: Bucket &#x27;{s3_bucket}&#x27; on {s3_server.endpoint} is writable." in page
    assert "No bucket: Bucket &#x27;arv-no-such-bucket&#x27; does not exist" in page
    assert "Disk Y: Yandex Disk refused the OAuth token (401)." in page
    statuses = dict(
        StorageConnection.objects.filter(pk__in=[good.pk, missing.pk, disk.pk]).values_list("name", "test_status")
    )
    assert statuses == {"Good S3": "success", "No bucket": "error", "Disk Y": "error"}
    assert s3_server.keys(s3_bucket) == []


def test_the_admin_refuses_a_local_disk_outside_the_roots(live_url, superuser, storage_root):
    with admin_session(live_url) as browser:
        page = browser.get("/admin/storage/storageconnection/add/")
        form = parse_page(page.text).forms["storageconnection_form"]
        fields = {**dict(form["fields"]), "name": "Admin escape", "provider": "local_disk", "base_path": "/etc"}
        fields.update(credentials="", metadata="{}")
        answer = browser.post("/admin/storage/storageconnection/add/", data=fields)
        assert answer.status_code == 200  # the form again, with its error
        assert "/etc is outside the storage roots this server allows" in answer.text
        assert not StorageConnection.objects.filter(name="Admin escape").exists()
        fields["base_path"] = str(storage_root)
        answer = browser.post("/admin/storage/storageconnection/add/", data=fields)
        assert answer.status_code == 302, answer.text[:3000]
    assert StorageConnection.objects.get(name="Admin escape").base_path == str(storage_root)


# --- no database worker held while a check waits ------------------------------------------

ONE_WORKER = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "ARV_STORAGE_TEST_TIMEOUT": "3"}


@pytest.fixture
def one_worker_server(start_server, staff_user, silent_endpoint):
    """(server with one database worker, a staff token, a minio connection to the silent endpoint)."""
    credentials = {"endpoint": silent_endpoint.endpoint, "access_key": "a", "secret_key": "s", "bucket": "arv-b"}
    connection = minio_connection("Silent", {**credentials, "secure": False})
    return start_server(**ONE_WORKER), token_issue(user=staff_user)[1], connection


def assert_others_served_while_pending(server_url: str, token: str, pending, silent_endpoint) -> None:
    """While `pending` (a future: a check against the silent endpoint) waits, the only worker
    serves other requests: each one finishes before the check does."""
    assert silent_endpoint.connected.wait(10), "the check never reached the endpoint"
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        for number in range(5):
            assert api.get("/api/companies").status_code == 200
            assert api.post("/api/companies", json={"name": f"Meanwhile {number}"}).status_code == 201
    assert not pending.done(), "the other requests waited for the check"


@pytest.mark.slow
def test_an_api_check_against_a_silent_endpoint_holds_no_worker(one_worker_server, silent_endpoint):
    server, token, connection = one_worker_server
    headers = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(1) as pool:
        url = f"{server.url}/api/storage/connections/{connection.id}/test"
        pending = pool.submit(httpx.post, url, headers=headers, timeout=30)
        assert_others_served_while_pending(server.url, token, pending, silent_endpoint)
        answer = pending.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == no_answer({"endpoint": silent_endpoint.endpoint}, 3).message
    connection.refresh_from_db()
    assert connection.test_status == "error"


@pytest.mark.slow
def test_an_admin_check_against_a_silent_endpoint_holds_no_worker(one_worker_server, superuser, silent_endpoint):
    server, token, connection = one_worker_server
    with admin_session(server.url) as browser, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(run_test_action, browser, connection)
        assert_others_served_while_pending(server.url, token, pending, silent_endpoint)
        answer = pending.result()
        assert answer.status_code == 302, answer.text[:2000]
        page = browser.get(answer.headers["Location"]).text
    assert f"Silent: No S3 answer from {silent_endpoint.endpoint} within 3 s" in page
    connection.refresh_from_db()
    assert connection.test_status == "error"

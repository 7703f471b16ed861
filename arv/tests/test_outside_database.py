"""Work outside the database holds no worker (arv.db.transaction.run_outside_db, from the
API's async views and the admin's async storage check), and each part of the request
commits or rolls back as it should. Real uvicorn processes (with the connection guard),
PostgreSQL, and storage servers on loopback (testing.remote)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from django.contrib.auth.models import Permission

from companies.models import Company
from storage.models import StorageConnection
from testing.admin import ADMIN_PASSWORD, ADMIN_USERNAME, log_in, parse_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ONE_WORKER = {"DJANGO_SETTINGS_MODULE": "testing.settings", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}


def names(prefix: str) -> list[str]:
    return sorted(Company.objects.filter(name__startswith=prefix).values_list("name", flat=True))


def test_run_outside_db_commits_the_first_part_and_runs_off_the_worker(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-db", params={"name": "Split"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["thread"] == "arv-outside-db"
    assert body["before"]["txid"] != body["after"]["txid"]  # two transactions
    assert body["after"]["in_atomic_block"] is True
    assert names("Split") == ["Split 1", "Split 2"]


def test_a_failing_request_keeps_only_what_was_committed_before_the_outside_work(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-db", params={"name": "Half", "status": 400}, timeout=30)
    assert answer.status_code == 400
    assert names("Half") == ["Half 1"]


def test_the_database_is_refused_outside(start_server):
    server = start_server(**ONE_WORKER)
    answer = httpx.get(f"{server.url}/api/test/outside-db", params={"name": "Orm", "orm": 1}, timeout=30)
    assert answer.status_code == 500
    assert "not a database worker" in server.output()
    # The worker was given back: the server still answers with its only worker.
    assert httpx.get(f"{server.url}/api/health", timeout=30).status_code == 200


# --- the admin's storage check: an async view, checked holding no worker ----------------

CHANGELIST = "/admin/storage/storageconnection/"


@contextmanager
def admin_browser(url: str, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=30) as browser:
        log_in(browser, username=username, password=password)
        yield browser


def choose_action(browser: httpx.Client, *connections: StorageConnection, **extra: str) -> httpx.Response:
    """Tick the connections in the changelist and run "Test selected storage connections", as a person does."""
    form = parse_page(browser.get(CHANGELIST).text).forms["changelist-form"]
    fields = {name: value for name, value in form["fields"] if name not in ("action", "_selected_action")}
    fields.update(action="test_connections", index="0", **extra)
    fields["_selected_action"] = [str(connection.pk) for connection in connections]
    return browser.post(CHANGELIST, data=fields)


def minio(name: str, credentials: dict) -> StorageConnection:
    return StorageConnection.objects.create(name=name, provider="minio", credentials=credentials)


def test_the_admin_check_stores_and_shows_each_outcome(start_server, superuser, s3_server, s3_bucket, storage_root):
    server = start_server(**ONE_WORKER)
    good = minio("Good", s3_server.credentials(s3_bucket))
    refused = minio("Refused", s3_server.credentials(s3_bucket, secret_key="not-the-secret"))
    disk = StorageConnection.objects.create(name="Disk", provider="local_disk", base_path=str(storage_root))
    untouched = minio("Not ticked", s3_server.credentials(s3_bucket))
    with admin_browser(server.url) as browser:
        answer = choose_action(browser, good, refused, disk)
        assert answer.status_code == 302, answer.text[:2000]
        assert answer.headers["Location"] == CHANGELIST
        page = browser.get(CHANGELIST).text
    assert f"Good: Bucket &#x27;{s3_bucket}&#x27; on {s3_server.endpoint} is writable." in page
    assert "Refused: " in page and "refused the access key or secret key" in page
    assert "Disk: " in page
    stored = dict(StorageConnection.objects.values_list("name", "test_status"))
    assert (stored["Good"], stored["Refused"], stored["Disk"]) == ("success", "error", "success")
    untouched.refresh_from_db()
    assert untouched.last_tested_at is None
    assert StorageConnection.objects.get(pk=refused.pk).test_error is not None


def test_select_all_checks_every_connection_the_filters_match(start_server, superuser, storage_root):
    server = start_server(**ONE_WORKER)
    disks = [
        StorageConnection.objects.create(name=f"Disk {n}", provider="local_disk", base_path=str(storage_root))
        for n in range(3)
    ]
    other = StorageConnection.objects.create(name="Yandex", provider="yandex_disk")
    with admin_browser(server.url) as browser:
        form = parse_page(browser.get(CHANGELIST, params={"provider": "local_disk"}).text).forms["changelist-form"]
        fields = {name: value for name, value in form["fields"] if name not in ("action", "_selected_action")}
        fields.update(action="test_connections", index="0", select_across="1", _selected_action=str(disks[0].pk))
        answer = browser.post(f"{CHANGELIST}?provider=local_disk", data=fields)
        assert answer.status_code == 302, answer.text[:2000]
    statuses = dict(StorageConnection.objects.values_list("pk", "test_status"))
    assert [statuses[disk.pk] for disk in disks] == ["success"] * 3
    assert statuses[other.pk] != "success"


def test_nothing_selected_is_answered_as_django_answers_it(start_server, superuser):
    server = start_server(**ONE_WORKER)
    with admin_browser(server.url) as browser:
        answer = choose_action(browser)
        assert answer.status_code == 302
        assert "Items must be selected in order to perform actions" in browser.get(CHANGELIST).text


def test_a_view_only_user_cannot_run_the_check(start_server, django_user_model, storage_root):
    server = start_server(**ONE_WORKER)
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_storageconnection"))
    disk = StorageConnection.objects.create(name="Disk", provider="local_disk", base_path=str(storage_root))
    with admin_browser(server.url, "viewer", "pw-viewer-123") as browser:
        page = browser.get(CHANGELIST)
        assert page.status_code == 200 and "Disk" in page.text
        assert "test_connections" not in page.text  # no such action in the menu
        assert choose_action(browser, disk).status_code == 403
    disk.refresh_from_db()
    assert disk.last_tested_at is None


def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login_page(start_server, storage_root):
    server = start_server(**ONE_WORKER)
    disk = StorageConnection.objects.create(name="Disk", provider="local_disk", base_path=str(storage_root))
    data = {"action": "test_connections", "index": "0", "_selected_action": str(disk.pk)}
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        anonymous.get("/admin/login/")  # the CSRF cookie
        data["csrfmiddlewaretoken"] = anonymous.cookies["csrftoken"]
        answer = anonymous.post(CHANGELIST, data=data)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/admin/login/")
    disk.refresh_from_db()
    assert disk.last_tested_at is None


@pytest.mark.slow
def test_an_admin_check_against_a_silent_endpoint_delays_no_admin_page(start_server, superuser, silent_endpoint):
    """With one worker, while the check waits on an endpoint that never answers, another
    person's admin pages (sync views, whole on the worker) are served."""
    server = start_server(**ONE_WORKER, ARV_STORAGE_TEST_TIMEOUT="3")
    credentials = {"endpoint": silent_endpoint.endpoint, "access_key": "a", "secret_key": "s", "bucket": "arv-b"}
    silent = minio("Silent", {**credentials, "secure": False})
    with admin_browser(server.url) as checker, admin_browser(server.url) as other, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(choose_action, checker, silent)
        assert silent_endpoint.connected.wait(10), "the check never reached the endpoint"
        for _ in range(3):
            assert other.get(CHANGELIST).status_code == 200
            assert other.get("/admin/companies/company/").status_code == 200
        assert not pending.done(), "the admin pages waited for the check"
        assert pending.result().status_code == 302
        page = checker.get(CHANGELIST).text
    assert f"Silent: No S3 answer from {silent_endpoint.endpoint} within 3 s" in page  # storage.providers.minio
    silent.refresh_from_db()
    assert silent.test_status == "error"

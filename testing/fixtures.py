"""pytest fixtures shared by every app's tests (registered in the root conftest.py)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from testing.servers import UvicornProcess, free_port, uvicorn_in_thread

if TYPE_CHECKING:  # imported by the fixtures that use them (boto3 is slow to import)
    from testing.remote import FakeS3Endpoint, S3Server, SilentEndpoint, YandexDiskServer

# Pool bounds of servers started by start_server (tests override them per server).
SERVER_POOL = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2"}


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    """Static files collected as for production (DEBUG off: hashed names from the manifest)."""
    from django.conf import settings
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path_factory.mktemp("static")
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker, collected_static) -> Iterator[str]:
    """The ARV ASGI application under a real uvicorn, on the test database."""
    # The server's threads may use the database whenever a request arrives.
    with django_db_blocker.unblock(), uvicorn_in_thread() as url:
        yield url


@pytest.fixture
def client_for(live_url: str, transactional_db) -> Iterator[Callable[..., httpx.Client]]:
    """client_for(user) -> an httpx client authenticated with a fresh bearer token (None: anonymous)."""
    from arv.auth.tokens import token_issue

    clients: list[httpx.Client] = []

    def make(user=None, token: str | None = None) -> httpx.Client:
        headers = {}
        if user is not None:
            _, token = token_issue(user=user)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.Client(base_url=live_url, headers=headers, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def staff_user(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("staff", is_staff=True)


@pytest.fixture
def superuser(transactional_db):
    """An admin login (testing.admin.log_in logs it in)."""
    from django.contrib.auth import get_user_model

    from testing.admin import ADMIN_PASSWORD, ADMIN_USERNAME

    return get_user_model().objects.create_superuser(ADMIN_USERNAME, password=ADMIN_PASSWORD)


@pytest.fixture
def admin(live_url, superuser) -> Iterator[httpx.Client]:
    """The superuser's admin session on the live server, logged in through the login form."""
    from testing.admin import log_in

    with httpx.Client(base_url=live_url, timeout=30) as browser:
        log_in(browser)
        yield browser


@pytest.fixture
def staff(client_for, staff_user) -> httpx.Client:
    return client_for(staff_user)


@pytest.fixture
def anonymous(client_for) -> httpx.Client:
    return client_for(None)


@pytest.fixture
def local_connection(transactional_db, storage_root):
    from storage.models import StorageConnection

    StorageConnection.objects.filter(is_default=True).update(is_default=False)  # e.g. the seeded one
    return StorageConnection.objects.create(
        name="Disk", provider="local_disk", base_path=str(storage_root), is_default=True
    )


@pytest.fixture
def make_company(transactional_db) -> Callable[..., object]:
    from companies.models import Company

    def make(name: str, **fields):
        if fields.get("is_default"):
            Company.objects.filter(is_default=True).update(is_default=False)  # e.g. the seeded one
        return Company.objects.create(name=name, slug=fields.pop("slug", name.lower().replace(" ", "-")), **fields)

    return make


@pytest.fixture
def member_of(client_for, transactional_db) -> Callable[..., httpx.Client]:
    """member_of(company) -> a client for a new non-staff user who belongs to company."""
    from django.contrib.auth import get_user_model

    from companies.models import CompanyMembership

    def make(company, username: str | None = None) -> httpx.Client:
        user = get_user_model().objects.create_user(username or f"member-{company.slug}")
        CompanyMembership.objects.create(user=user, company=company)
        return client_for(user)

    return make


@pytest.fixture
def start_server(tmp_path, collected_static) -> Iterator[Callable[..., UvicornProcess]]:
    """start_server(database_url=None, uvicorn_args=(), **env) -> `uvicorn arv.asgi:application` in its own process.

    On the test database unless told otherwise, with SERVER_POOL's bounds and env on top,
    and uvicorn_args added to uvicorn's options (e.g. ("--root-path", "/arv")); its output
    goes to a log file (server.output()). Every server is stopped afterwards.
    """
    from testing.postgres import current_database_url

    servers: list[UvicornProcess] = []

    def start(database_url: str | None = None, uvicorn_args: Sequence[str] = (), **env: str) -> UvicornProcess:
        server = UvicornProcess(
            {
                "DATABASE_URL": database_url or current_database_url(),
                "ARV_STATIC_ROOT": str(collected_static),
                **SERVER_POOL,
                **env,
            },
            log_path=tmp_path / f"uvicorn-{len(servers)}.log",
            args=uvicorn_args,
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def observer(transactional_db):
    """A DatabaseObserver of the sessions of servers the test starts, on the test database.

    Sessions already open are this test process's: its own connection and, once live_url
    has started, the in-thread server's workers. They are not counted.
    """
    from django.db import connection

    from testing.postgres import DatabaseObserver, current_database_conninfo

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    watcher = DatabaseObserver(current_database_conninfo(), connection.settings_dict["NAME"], ignore_pids=(own_pid,))
    watcher.ignore_pids.extend(pid for pid, _ in watcher.backends())
    yield watcher
    watcher.close()


@pytest.fixture
def storage_root(tmp_path) -> Path:
    """A directory local_disk connections may name (pytest's temporary directories are inside
    ARV_LOCAL_STORAGE_ROOTS in tests: testing.env)."""
    return tmp_path


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 endpoint on loopback (moto's server mode) that accepts only its own key pair."""
    from testing.remote import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, request) -> str:
    """A fresh, empty bucket on s3_server, named after the test."""
    name = "arv-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    return s3_server.create_bucket(f"{name}-{next(_buckets)}")


_buckets = itertools.count()


@pytest.fixture
def yandex_disk(settings) -> Iterator[YandexDiskServer]:
    """A Yandex Disk API on loopback; ARV_YANDEX_DISK_API_URL points at it in this process."""
    from testing.remote import YandexDiskServer

    server = YandexDiskServer()
    settings.YANDEX_DISK_API_URL = server.url
    yield server
    server.stop()


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    """host:port of a server that accepts connections and never answers."""
    from testing.remote import SilentEndpoint

    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def closed_endpoint() -> str:
    """host:port where nothing listens (connections are refused)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def fake_s3() -> Iterator[Callable[..., FakeS3Endpoint]]:
    """fake_s3(put, **options) -> an S3-looking endpoint on loopback that misbehaves as `put` says
    (testing.remote.FakeS3Endpoint); stopped afterwards."""
    from testing.remote import FakeS3Endpoint

    endpoints: list[FakeS3Endpoint] = []

    def make(put: str, **options) -> FakeS3Endpoint:
        endpoints.append(FakeS3Endpoint(put, **options))
        return endpoints[-1]

    yield make
    for endpoint in endpoints:
        endpoint.stop()

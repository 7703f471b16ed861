"""pytest fixtures shared by every app's tests (registered in the root conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from arv.testing.servers import uvicorn_in_thread


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
def staff(client_for, staff_user) -> httpx.Client:
    return client_for(staff_user)


@pytest.fixture
def anonymous(client_for) -> httpx.Client:
    return client_for(None)


@pytest.fixture
def local_connection(transactional_db, tmp_path):
    from storage.models import StorageConnection

    StorageConnection.objects.filter(is_default=True).update(is_default=False)  # e.g. the seeded one
    return StorageConnection.objects.create(
        name="Disk", provider="local_disk", base_path=str(tmp_path), is_default=True
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

"""Every endpoint of API.md x every kind of caller: the status is API.md's "Who may do what".

Each cell runs against the same world: company A, company B, a member of each, a staff
user, an unused local-disk connection. Bearer tokens get staff's or a member's rules; the
admin's session cookie (with its CSRF header) gets exactly its Django permissions: a
superuser all, a view-only staff user reads only, a staff user with add+view on storage
connections only those. Bodies are valid, so only access decides; when
access says no (4xx), nothing in the database has changed.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from companies.access import MEMBER_WRITABLE_FIELDS

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = [
    "anonymous",
    "bad token",
    "member of A",
    "member of B",
    "staff",
    "superuser session",
    "view-only session",
    "connections add+view session",
]
BAD_TOKEN = "arv_0123456789abcdef_not-a-real-secret"

# Expected status per role. {company} is company A, {connection} the storage connection.
# fmt: off
MATRIX = {
    # endpoint                          method    path                                        anon  bad  A-mbr B-mbr staff super view conn
    "list companies":                  ("GET",    "/api/companies",                            401, 401, 200, 200, 200, 200, 200, 403),
    "create company":                  ("POST",   "/api/companies",                            401, 401, 403, 403, 201, 201, 403, 403),
    "company detail":                  ("GET",    "/api/companies/{company}",                  401, 401, 200, 404, 200, 200, 200, 403),
    "patch company (member fields)":   ("PATCH",  "/api/companies/{company}",                  401, 401, 200, 404, 200, 200, 403, 403),
    "patch company (operator fields)": ("PATCH",  "/api/companies/{company}",                  401, 401, 403, 404, 200, 200, 403, 403),
    "delete company":                  ("DELETE", "/api/companies/{company}",                  401, 401, 403, 403, 204, 204, 403, 403),
    "set company storage":             ("PUT",    "/api/companies/{company}/storage",          401, 401, 403, 403, 200, 200, 403, 403),
    "list folders":                    ("GET",    "/api/companies/{company}/folders",          401, 401, 200, 404, 200, 200, 200, 403),
    "create folder":                   ("POST",   "/api/companies/{company}/folders",          401, 401, 201, 404, 201, 201, 403, 403),
    "list connections":                ("GET",    "/api/storage/connections",                  401, 401, 403, 403, 200, 200, 200, 200),
    "create connection":               ("POST",   "/api/storage/connections",                  401, 401, 403, 403, 201, 201, 403, 201),
    "connection detail":               ("GET",    "/api/storage/connections/{connection}",     401, 401, 403, 403, 200, 200, 200, 200),
    "patch connection":                ("PATCH",  "/api/storage/connections/{connection}",     401, 401, 403, 403, 200, 200, 403, 403),
    "delete connection":               ("DELETE", "/api/storage/connections/{connection}",     401, 401, 403, 403, 204, 204, 403, 403),
    "test connection":                 ("POST",   "/api/storage/connections/{connection}/test", 401, 401, 403, 403, 200, 200, 403, 403),
    "connection stats":                ("GET",    "/api/storage/connections/{connection}/stats", 401, 401, 403, 403, 200, 200, 200, 200),
    "health":                          ("GET",    "/api/health",                               200, 200, 200, 200, 200, 200, 200, 200),
    "readiness":                       ("GET",    "/api/health/ready",                         200, 200, 200, 200, 200, 200, 200, 200),
}
# fmt: on

# Operator fields: writable by staff, 403 for a member (companies.access.MEMBER_WRITABLE_FIELDS).
OPERATOR_FIELDS = {
    "name": "Alpha Renamed",  # a rename could tell a member other companies' names (409)
    "subscription_tier": "enterprise",
    "storage_quota_gb": 50,
    "projects_limit": 25,
    "is_active": False,
    "subscription_expires_at": "2030-01-01T00:00:00+00:00",
    "storage_connection_id": "{connection}",
    "storage_path": "/alpha",
}


def body_for(endpoint: str, world: SimpleNamespace) -> dict | None:
    bodies = {
        "create company": {"name": "Gamma"},
        "patch company (member fields)": {
            "contact_email": "alpha@example.com",
            "contact_phone": "+1 555 0100",
            "telegram_chat_id": "12345",
            "notes": "noted",
            "metadata": {"plan": "x"},
        },
        "patch company (operator fields)": {
            field: world.connection.id if value == "{connection}" else value for field, value in OPERATOR_FIELDS.items()
        },
        "set company storage": {"storage_connection_id": world.connection.id, "storage_path": "/alpha"},
        "create folder": {"name": "Portraits", "path": "/portraits", "folder_type": "portraits"},
        "create connection": {"name": "Second disk", "provider": "local_disk", "base_path": world.base_path},
        "patch connection": {"name": "Renamed disk"},
    }
    return bodies.get(endpoint)


CELLS = [(endpoint, role) for endpoint in MATRIX for role in ROLES]


def expected_status(endpoint: str, role: str) -> int:
    return MATRIX[endpoint][2 + ROLES.index(role)]


# The session callers' permissions, as an operator would grant them in the admin.
VIEW_ONLY = ["view_company", "view_storageconnection", "view_storagefolder"]
CONNECTIONS_ADD_VIEW = ["add_storageconnection", "view_storageconnection"]


@pytest.fixture
def session_for(live_url, transactional_db):
    """session_for(user) -> an httpx client with the admin's session cookie for `user` and the
    CSRF header the API asks of it for unsafe methods (as the admin's pages would send)."""
    import httpx
    from django.conf import settings
    from django.test import Client

    clients: list[httpx.Client] = []

    def make(user) -> httpx.Client:
        browser = Client()
        browser.force_login(user)  # the session, stored as a login through the form stores it
        csrf = "c" * 32
        cookies = {settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value, "csrftoken": csrf}
        client = httpx.Client(base_url=live_url, cookies=cookies, headers={"X-CSRFToken": csrf}, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def staff_with(django_user_model, username: str, codenames: list[str]):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def world(
    client_for, anonymous, staff, member_of, make_company, session_for, django_user_model, tmp_path
) -> SimpleNamespace:
    from storage.models import StorageConnection

    company_a, company_b = make_company("Alpha"), make_company("Beta")
    connection = StorageConnection.objects.create(name="Disk", provider="local_disk", base_path=str(tmp_path))
    (tmp_path / "second").mkdir()
    callers = {
        "anonymous": anonymous,
        "bad token": client_for(token=BAD_TOKEN),
        "member of A": member_of(company_a),
        "member of B": member_of(company_b),
        "staff": staff,
        "superuser session": session_for(django_user_model.objects.create_superuser("root-session")),
        "view-only session": session_for(staff_with(django_user_model, "viewer", VIEW_ONLY)),
        "connections add+view session": session_for(staff_with(django_user_model, "connector", CONNECTIONS_ADD_VIEW)),
    }
    return SimpleNamespace(
        company=company_a, connection=connection, base_path=str(tmp_path / "second"), callers=callers
    )


def database_contents() -> dict[str, list[tuple]]:
    """Every row of the tables the API writes (token bookkeeping aside)."""
    from companies.models import Company, CompanyMembership
    from storage.models import StorageConnection, StorageFolder

    return {
        model._meta.label: list(model.objects.order_by("pk").values_list())
        for model in (Company, CompanyMembership, StorageConnection, StorageFolder)
    }


@pytest.mark.parametrize(("endpoint", "role"), CELLS, ids=[f"{e} as {r}" for e, r in CELLS])
def test_access(world, endpoint, role):
    method, path, *_ = MATRIX[endpoint]
    url = path.format(company=world.company.id, connection=world.connection.id)
    before = database_contents()

    response = world.callers[role].request(method, url, json=body_for(endpoint, world))

    expected = expected_status(endpoint, role)
    assert response.status_code == expected, f"{method} {url} as {role}: {response.status_code} {response.text}"
    if expected >= 400:
        assert "detail" in response.json()
        assert database_contents() == before, "a refused request changed the database"


@pytest.mark.parametrize("field", sorted(OPERATOR_FIELDS))
def test_a_member_may_not_patch_an_operator_field(world, field):
    value = OPERATOR_FIELDS[field]
    body = {field: world.connection.id if value == "{connection}" else value}
    before = database_contents()
    response = world.callers["member of A"].patch(f"/api/companies/{world.company.id}", json=body)
    assert response.status_code == 403
    assert database_contents() == before


def test_the_matrix_covers_every_endpoint_and_field(live_url, anonymous):
    """Every operation in the OpenAPI schema has a row; every writable field is a member's or an operator's."""
    schema = anonymous.get("/api/openapi.json").json()

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    served = {(method.upper(), shape(path)) for path, operations in schema["paths"].items() for method in operations}
    covered = {(method, shape(path)) for method, path, *_ in MATRIX.values()}
    assert covered == served

    update_fields = set(schema["components"]["schemas"]["CompanyUpdate"]["properties"])
    assert update_fields == MEMBER_WRITABLE_FIELDS | set(OPERATOR_FIELDS)

    assert len(CELLS) == len(MATRIX) * len(ROLES) == 144
    print(f"access matrix: {len(MATRIX)} endpoints x {len(ROLES)} roles = {len(CELLS)} cells")

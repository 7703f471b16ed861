"""Who may do what (API.md): staff everything, a member its own company, anonymous nothing."""

import pytest

from companies.models import Company

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own(make_company):
    return make_company("Own Co")


@pytest.fixture
def other(make_company):
    return make_company("Other Co")


@pytest.fixture
def member(member_of, own):
    return member_of(own)


def test_anonymous_requests_are_401(anonymous, own):
    for method, path in [
        ("GET", "/api/companies"),
        ("GET", f"/api/companies/{own.id}"),
        ("POST", "/api/companies"),
        ("GET", "/api/storage/connections"),
    ]:
        response = anonymous.request(method, path, json={})
        assert response.status_code == 401, (method, path)
        assert "detail" in response.json()


def test_a_bad_token_is_401(client_for, own):
    for token in ["nonsense", "arv_0123456789abcdef_wrong", "arv_0123456789abcdef_"]:
        assert client_for(token=token).get(f"/api/companies/{own.id}").status_code == 401


def test_a_bad_token_is_401_whatever_else_is_wrong_and_writes_nothing(client_for):
    # The token's lookup joins the view's first trip: a request that fails before it (a body
    # or path the view would refuse with 422) is still judged by its token first.
    client = client_for(token="arv_0123456789abcdef_wrong")
    assert client.post("/api/companies", json={}).status_code == 401
    assert client.get("/api/companies/0").status_code == 401
    response = client.post("/api/companies", json={"name": "Never Co"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Authentication credentials were missing or invalid."}
    assert not Company.objects.filter(name="Never Co").exists()


def test_health_needs_no_credentials(anonymous):
    assert anonymous.get("/api/health").json() == {"status": "ok", "database": "ok"}


def test_a_member_lists_only_its_own_company(member, own, other):
    body = member.get("/api/companies").json()
    assert [c["id"] for c in body["items"]] == [own.id]
    assert body["total"] == 1


def test_a_member_reads_and_patches_its_own_company(member, own):
    assert member.get(f"/api/companies/{own.id}").status_code == 200
    response = member.patch(f"/api/companies/{own.id}", json={"contact_phone": "+1 555"})
    assert response.status_code == 200
    assert response.json()["contact_phone"] == "+1 555"


def test_a_member_may_not_change_operator_fields(member, own):
    response = member.patch(f"/api/companies/{own.id}", json={"subscription_tier": "enterprise"})
    assert response.status_code == 403
    own.refresh_from_db()
    assert own.subscription_tier == "basic"


def test_other_companies_are_404_for_a_member(member, other):
    assert member.get(f"/api/companies/{other.id}").status_code == 404
    assert member.patch(f"/api/companies/{other.id}", json={"notes": "x"}).status_code == 404
    assert member.get(f"/api/companies/{other.id}/folders").status_code == 404
    assert member.post(f"/api/companies/{other.id}/folders", json={"name": "a", "path": "/a"}).status_code == 404


def test_a_member_uses_its_own_companys_folders(member, own):
    assert member.post(f"/api/companies/{own.id}/folders", json={"name": "a", "path": "/a"}).status_code == 201
    assert [f["path"] for f in member.get(f"/api/companies/{own.id}/folders").json()] == ["/a"]


def test_staff_only_operations_are_403_for_a_member(member, own, other, local_connection):
    assert member.post("/api/companies", json={"name": "Mine Too"}).status_code == 403
    assert member.delete(f"/api/companies/{own.id}").status_code == 403
    assert member.delete(f"/api/companies/{other.id}").status_code == 403
    assert (
        member.put(f"/api/companies/{own.id}/storage", json={"storage_connection_id": local_connection.id}).status_code
        == 403
    )
    assert member.get("/api/storage/connections").status_code == 403
    assert member.get(f"/api/storage/connections/{local_connection.id}").status_code == 403
    assert member.post("/api/storage/connections", json={"name": "n", "provider": "minio"}).status_code == 403
    assert member.post(f"/api/storage/connections/{local_connection.id}/test").status_code == 403


def test_a_user_without_a_company_sees_nothing(client_for, own, django_user_model):
    loner = client_for(django_user_model.objects.create_user("loner"))
    assert loner.get("/api/companies").json()["total"] == 0
    assert loner.get(f"/api/companies/{own.id}").status_code == 404


def test_a_revoked_token_is_401(client_for, staff_user):
    from arv.auth.models import ApiToken
    from arv.auth.tokens import token_issue, token_revoke

    row, token = token_issue(user=staff_user)
    client = client_for(token=token)
    assert client.get("/api/companies").status_code == 200
    token_revoke(token=ApiToken.objects.get(pk=row.pk))
    assert client.get("/api/companies").status_code == 401


def test_session_login_works_and_unsafe_methods_need_csrf(live_url, staff_user, transactional_db):
    import httpx
    from django.contrib.auth.models import Permission

    staff_user.set_password("pw-for-tests-123")
    staff_user.save()
    # A session caller gets its Django permissions (companies.access): these two, here.
    staff_user.user_permissions.set(Permission.objects.filter(codename__in=["view_company", "add_company"]))
    with httpx.Client(base_url=live_url, follow_redirects=True) as browser:
        login_page = browser.get("/admin/login/")
        csrf = browser.cookies["csrftoken"]
        browser.post(
            "/admin/login/?next=/admin/",
            data={"username": "staff", "password": "pw-for-tests-123", "csrfmiddlewaretoken": csrf},
            headers={"Referer": str(login_page.url)},
        )
        assert "sessionid" in browser.cookies
        assert browser.get("/api/companies").status_code == 200
        assert browser.post("/api/companies", json={"name": "No Csrf"}).status_code == 403
        response = browser.post(
            "/api/companies",
            json={"name": "With Csrf"},
            headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": live_url + "/admin/"},
        )
        assert response.status_code == 201

"""The companies' services called as `manage.py shell` or a command calls them: no request, no
server, the real database. The same rules and locks as through the API; an invalid value
raises ValidationError and writes nothing; inside a caller's transaction a service joins it."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from companies.models import Company, CompanyMembership
from companies.services import company_create, company_delete, company_update, folder_create
from storage.models import StorageFolder

pytestmark = pytest.mark.django_db(transaction=True)  # no test transaction around the calls: as in the shell


def locked_elsewhere(company_id: int) -> bool:
    """Whether another session (a thread of its own) finds the company's row locked."""
    found: list[bool] = []

    def try_lock() -> None:
        try:
            with transaction.atomic():
                list(Company.objects.select_for_update(nowait=True).filter(pk=company_id))
            found.append(False)
        except DatabaseError:  # psycopg's LockNotAvailable
            found.append(True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=try_lock)
    thread.start()
    thread.join(30)
    return found[0]


def test_company_update_works_outside_any_transaction(staff_user, make_company):
    """select_for_update needs a transaction: the service opens its own (it raised
    TransactionManagementError outside a request before)."""
    company = make_company("Acme")
    assert connection.get_autocommit()
    updated = company_update(user=staff_user, company_id=company.pk, name="Acme Works", notes="from the shell")
    assert (updated.name, updated.slug, updated.notes) == ("Acme Works", "acme-works", "from the shell")
    company.refresh_from_db()
    assert (company.name, company.slug) == ("Acme Works", "acme-works")
    assert not locked_elsewhere(company.pk)  # committed, lock released


def test_company_update_holds_the_row_lock_until_the_callers_transaction_ends(staff_user, make_company):
    company = make_company("Acme")
    with transaction.atomic():
        company_update(user=staff_user, company_id=company.pk, notes="locked")
        assert locked_elsewhere(company.pk)
    assert not locked_elsewhere(company.pk)


def test_the_member_rules_hold_outside_a_request(make_company):
    company = make_company("Acme")
    member = get_user_model().objects.create_user("member")
    CompanyMembership.objects.create(user=member, company=company)
    with pytest.raises(PermissionDenied):
        company_update(user=member, company_id=company.pk, projects_limit=1000)
    assert company_update(user=member, company_id=company.pk, notes="ours").notes == "ours"
    company.refresh_from_db()
    assert company.projects_limit == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [("contact_email", "not an address"), ("metadata", ["not", "an", "object"]), ("storage_path", "/a/../b")],
)
def test_an_invalid_update_raises_validation_error_and_writes_nothing(staff_user, make_company, field, value):
    company = make_company("Acme", notes="before")
    with pytest.raises(ValidationError) as raised:
        company_update(user=staff_user, company_id=company.pk, notes="after", **{field: value})
    assert field in raised.value.message_dict
    company.refresh_from_db()
    assert company.notes == "before"
    assert getattr(company, field) != value


def test_an_invalid_create_raises_validation_error_and_writes_nothing(staff_user):
    before = Company.objects.count()
    with pytest.raises(ValidationError) as raised:
        company_create(user=staff_user, name="Acme", contact_email="not an address")
    assert "contact_email" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        company_create(user=staff_user, name="Acme", storage_connection_id=10**9)  # the service's own check
    assert "storage_connection_id" in raised.value.message_dict
    assert Company.objects.count() == before
    assert not Company.objects.filter(name="Acme").exists()


def test_a_service_inside_an_outer_atomic_joins_it_without_a_savepoint(staff_user):
    with pytest.raises(RuntimeError), transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            created = company_create(user=staff_user, name="Acme")
            company_update(user=staff_user, company_id=created.pk, notes="joined")
        assert not [query for query in queries if "SAVEPOINT" in query["sql"].upper()]
        raise RuntimeError("the caller changes its mind")
    assert not Company.objects.filter(name="Acme").exists()  # rolled back with the caller's transaction


def test_company_delete_keeps_its_rules_outside_a_request(staff_user, make_company):
    company = make_company("Acme")
    folder_create(user=staff_user, company_id=company.pk, name="Pictures", path="pictures")
    with pytest.raises(Exception, match="still has folders"):
        company_delete(user=staff_user, company_id=company.pk)
    assert Company.objects.filter(pk=company.pk).exists()


def test_folder_create_validates_the_path_and_writes_nothing_when_refused(staff_user, make_company):
    company = make_company("Acme")
    folder = folder_create(user=staff_user, company_id=company.pk, name="Pictures", path="a//b/")
    assert folder.path == "/a/b"  # canonical, as the API and the admin store it
    for path in ("/a/../b", "/"):
        with pytest.raises(ValidationError) as raised:
            folder_create(user=staff_user, company_id=company.pk, name="Bad", path=path)
        assert "path" in raised.value.message_dict
    assert list(StorageFolder.objects.filter(company=company).values_list("path", flat=True)) == ["/a/b"]


def test_an_update_validates_what_it_changes_as_a_form_does(staff_user, make_company):
    """A value stored before a rule existed (here a slug the model's validator refuses) does not
    block changing another field; the changed field itself is validated."""
    company = make_company("Acme & Co", slug="acme-&-co")
    assert company_update(user=staff_user, company_id=company.pk, notes="still editable").notes == "still editable"
    with pytest.raises(ValidationError):
        company_update(user=staff_user, company_id=company.pk, contact_email="not an address")

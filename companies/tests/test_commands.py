"""Operator commands: migrate seeds the defaults; create_api_token issues working tokens."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from arv.auth.models import ApiToken
from arv.auth.tokens import token_user
from companies.models import Company, CompanyMembership
from storage.models import StorageConnection

pytestmark = pytest.mark.django_db(transaction=True)


def _issue(*args: str) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_migrate_seeds_the_defaults_once():
    call_command("migrate", "companies", "0002", verbosity=0)
    Company.objects.all().delete()
    StorageConnection.objects.all().delete()
    call_command("migrate", verbosity=0)
    call_command("migrate", "companies", "0002", verbosity=0)
    call_command("migrate", verbosity=0)  # runs the seed again: changes nothing
    connection = StorageConnection.objects.get()
    assert (connection.name, connection.provider, connection.is_default) == ("Local Storage", "local_disk", True)
    company = Company.objects.get()
    assert company.is_default and company.storage_connection == connection


def test_create_api_token_makes_a_staff_user_and_prints_the_token_last():
    token = _issue("ops", "--staff")
    user = get_user_model().objects.get(username="ops")
    assert user.is_staff and not user.has_usable_password()
    assert token_user(token) == user
    assert token not in {t.secret_hash for t in ApiToken.objects.all()}  # stored hashed


def test_create_api_token_makes_a_company_member():
    company = Company.objects.create(name="Member Co", slug="member-co")
    token = _issue("alice", "--company", "member-co")
    assert CompanyMembership.objects.get(user__username="alice").company == company
    assert token_user(token).username == "alice"


def test_create_api_token_for_an_unknown_company_fails_and_creates_nothing():
    with pytest.raises(CommandError):
        _issue("bob", "--company", "nope")
    assert not get_user_model().objects.filter(username="bob").exists()


def test_create_api_token_with_a_name_the_model_refuses_fails_and_creates_nothing():
    with pytest.raises(CommandError, match="at most 100 characters"):
        _issue("dave", "--staff", "--name", "x" * 101)
    assert not get_user_model().objects.filter(username="dave").exists()
    assert not ApiToken.objects.exists()


def test_revoke_api_token_stops_the_token():
    token = _issue("carol", "--staff")
    call_command("revoke_api_token", token, stdout=StringIO())
    assert token_user(token) is None

"""A search is planned for its own term (no generic plan of a prepared statement), and only in its transaction."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from companies import selectors

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan cache"),
]


def plan_cache_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


def test_a_search_forces_custom_plans_until_its_transaction_ends():
    staff = get_user_model()(pk=1, is_staff=True)
    with transaction.atomic():
        selectors.company_list(user=staff, page=1, page_size=20)
        assert plan_cache_mode() == "auto"
        selectors.company_list(user=staff, page=1, page_size=20, search="acme")
        assert plan_cache_mode() == "force_custom_plan"
    assert plan_cache_mode() == "auto"

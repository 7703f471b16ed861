"""Company.objects.count(): every company's count from the counter PostgreSQL keeps, exact like count(*)."""

import psycopg
import pytest
from django.db import connection

from companies.models import Company
from testing.postgres import current_database_conninfo

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the counter is PostgreSQL's (triggers)")


def rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM companies_company")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_count_follows_creates_bulk_creates_and_deletes(make_company):
    assert Company.objects.count() == rows()
    make_company("Counted One")
    Company.objects.bulk_create(Company(name=f"Bulk {i}", slug=f"bulk-{i}") for i in range(7))
    assert Company.objects.count() == rows()
    Company.objects.filter(name__startswith="Bulk").delete()
    assert Company.objects.count() == rows()


@pytest.mark.django_db
def test_filtered_and_annotated_counts_still_count_rows(make_company):
    make_company("Active Co")
    make_company("Inactive Co", is_active=False)
    assert Company.objects.filter(is_active=False).count() == 1
    assert Company.objects.filter(name__endswith=" Co").count() == 2
    assert Company.objects.filter(name="Active Co").distinct().count() == 1
    assert Company.objects.all()[:1].count() == 1


@pytest.mark.django_db
def test_truncate_resets_the_count(make_company):
    make_company("Truncated")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE companies_company CASCADE")
    assert Company.objects.count() == 0 == rows()


@pytest.mark.django_db(transaction=True)
def test_a_count_sees_committed_rows_of_other_connections_and_not_uncommitted_ones(make_company):
    before = Company.objects.count()
    with psycopg.connect(current_database_conninfo()) as other:
        other.execute(
            "INSERT INTO companies_company (name, slug, storage_quota_gb, storage_used_bytes, projects_limit,"
            " is_active, is_default, subscription_tier, metadata, created_at, updated_at)"
            " VALUES ('Elsewhere', 'elsewhere', 10, 0, 10, true, false, 'basic', '{}', now(), now())"
        )
        assert Company.objects.count() == before  # not committed yet
        other.commit()
    assert Company.objects.count() == before + 1 == rows()


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_on_many_connections_are_all_counted(make_company):
    before = Company.objects.count()
    connections, spares = _in_transactions_on_distinct_slots(4)
    try:
        for n, other in enumerate(connections):  # all open at once, committed in another order
            other.execute(
                "INSERT INTO companies_company (name, slug, storage_quota_gb, storage_used_bytes, projects_limit,"
                " is_active, is_default, subscription_tier, metadata, created_at, updated_at)"
                " VALUES (%s, %s, 10, 0, 10, true, false, 'basic', '{}', now(), now())",
                (f"Concurrent {n}", f"concurrent-{n}"),
            )
        for other in reversed(connections):
            other.commit()
    finally:
        for other in connections + spares:
            other.close()
    assert Company.objects.count() == before + 4 == rows()


def _in_transactions_on_distinct_slots(count: int) -> tuple[list[psycopg.Connection], list[psycopg.Connection]]:
    """count connections, each in a transaction on a session whose counter slot (its backend pid
    mod 64, migration 0006) no other one has, and the spares that were not: two inserts on one
    slot would wait for each other's commit, which the test sends only after every insert. A
    spare keeps its transaction open, so that through PgBouncer the next connection gets
    another server session."""
    chosen: list[psycopg.Connection] = []
    spares: list[psycopg.Connection] = []
    slots: set[int] = set()
    while len(chosen) < count:
        other = psycopg.connect(current_database_conninfo())
        (slot,) = other.execute("SELECT mod(pg_backend_pid(), 64)").fetchone()  # begins its transaction
        (spares if slot in slots else chosen).append(other)
        slots.add(slot)
    return chosen, spares

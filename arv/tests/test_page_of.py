"""arv.db.queries.page_of: the same rows in the same order as slicing, annotations computed for the page only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arv.db.queries import page_of
from companies.models import Company
from companies.selectors import with_folders_count
from storage.models import StorageFolder

pytestmark = pytest.mark.django_db


@pytest.fixture
def companies(make_company):
    made = [make_company(f"Paged {i:02d}", is_active=i % 3 != 0) for i in range(12)]
    for company in made[::4]:
        StorageFolder.objects.create(company=company, name="f", path=f"f/{company.pk}")
    return made


@pytest.mark.parametrize("start, stop", [(0, 5), (5, 10), (10, 15), (11, 12), (20, 25)])
def test_a_page_is_the_slice_of_the_same_ordering(companies, start, stop):
    ordered = with_folders_count(Company.objects.filter(name__startswith="Paged")).order_by("-created_at", "-id")
    page = list(page_of(ordered, start, stop))
    expected = list(ordered[start:stop])
    assert [c.pk for c in page] == [c.pk for c in expected]
    assert [c.folders_count for c in page] == [c.folders_count for c in expected]


def test_a_page_of_a_filtered_queryset_in_another_order(companies):
    ordered = Company.objects.filter(name__startswith="Paged", is_active=True).order_by("name")
    assert [c.pk for c in page_of(ordered, 2, 6)] == [c.pk for c in ordered[2:6]]


def test_the_offset_rows_are_not_annotated(companies):
    # The annotation's subquery sits in the outer select only; the page's keys come from a bare subquery.
    ordered = with_folders_count(Company.objects.all()).order_by("-created_at", "-id")
    with CaptureQueriesContext(connection) as queries:
        list(page_of(ordered, 5, 10))
    (sql,) = [q["sql"] for q in queries.captured_queries]
    inner = sql[sql.index(" IN (SELECT") :]
    assert "storage_storagefolder" not in inner and "OFFSET 5" in inner


def test_a_distinct_queryset_is_sliced_as_it_is(companies):
    ordered = Company.objects.filter(name__startswith="Paged").distinct().order_by("name")
    assert [c.pk for c in page_of(ordered, 1, 4)] == [c.pk for c in ordered[1:4]]

"""arv.db.queries.CompiledQuery: compiled once, the same rows and objects as the ORM every time."""

import pytest
from django.db.models import Q, Value

from arv.db.queries import CompiledCount, CompiledQuery
from companies.models import Company
from companies.selectors import with_folders_count
from storage.models import StorageFolder

pytestmark = pytest.mark.django_db

FIELDS = [field.attname for field in Company._meta.concrete_fields]


def _by_id(company_id: int):
    return with_folders_count(Company.objects.order_by()).filter(pk=company_id)


def test_objects_match_the_orms_with_annotations_and_converted_fields(make_company):
    counted = make_company("Counted", metadata={"tier": {"nested": [1, 2]}})
    StorageFolder.objects.create(company=counted, name="a", path="a")
    StorageFolder.objects.create(company=counted, name="b", path="b")
    other = make_company("Other")
    query = CompiledQuery(_by_id, company_id=int)

    for company in (counted, other, counted):  # the second run of a compiled query too
        (compiled,) = query.run(company_id=company.pk)
        expected = _by_id(company.pk).get()
        assert type(compiled) is Company and not compiled._state.adding
        assert {f: getattr(compiled, f) for f in FIELDS} == {f: getattr(expected, f) for f in FIELDS}
        assert compiled.folders_count == expected.folders_count
    assert query.run(company_id=counted.pk)[0].folders_count == 2
    assert query.run(company_id=counted.pk)[0].metadata == {"tier": {"nested": [1, 2]}}  # JSON, not text
    assert query.run(company_id=other.pk + 1000) == []


def test_a_parameter_used_twice_takes_the_value_in_both_places(make_company):
    make_company("Twice", slug="twice")
    make_company("Elsewhere", slug="twice-not")
    query = CompiledQuery(lambda word: Company.objects.filter(Q(name__iexact=word) | Q(slug=word)), word=str)
    assert [c.name for c in query.run(word="twice")] == ["Twice"]
    assert [c.name for c in query.run(word="elsewhere")] == ["Elsewhere"]


def test_what_it_cannot_run_is_refused_when_compiled():
    with pytest.raises(ValueError, match="does not use"):
        CompiledQuery(lambda company_id: Company.objects.all(), company_id=int).run(company_id=1)
    with pytest.raises(ValueError, match="plain model querysets"):
        CompiledQuery(lambda company_id: Company.objects.filter(pk=company_id).values("name"), company_id=int).run(
            company_id=1
        )


def test_int_parameters_may_bound_a_slice_and_a_pattern_is_escaped_by_the_sql(make_company):
    for name in ["Co 0", "Co 1", "Co 2", "Co 3", "Co 4", "100% pure", "under_score", "back\\slash", "Cob"]:
        make_company(name)

    def orm(start, size, term):
        return Company.objects.filter(name__icontains=term).order_by("name", "pk")[start : start + size]

    query = CompiledQuery(lambda start, size, term: orm(start, size, Value(term)), start=int, size=int, term=str)
    # LIMIT and OFFSET are placeholders now; the SQL's own %% (LIKE '%%' || ...) stays as it was.
    query.run(start=0, size=1, term="co")
    assert "LIMIT %s OFFSET %s" in query._compiled["default"].sql
    for start, size, term in [
        (0, 3, "co"),
        (2, 3, "co"),
        (4, 10, "CO"),
        (0, 5, "%"),
        (0, 5, "_"),
        (0, 5, "0% p"),
        (0, 5, "k\\s"),
        (0, 5, "\\"),
        (9, 5, ""),
    ]:
        assert [c.pk for c in query.run(start=start, size=size, term=term)] == [c.pk for c in orm(start, size, term)]
    assert [c.name for c in query.run(start=0, size=5, term="%")] == ["100% pure"]  # a literal %, not "anything"


def test_a_compiled_count_counts_as_the_orm_does(make_company):
    for name in ("Alpha One", "Alpha Two", "Beta"):
        make_company(name)
    by_term = CompiledCount(lambda term: Company.objects.filter(name__icontains=Value(term)), term=str)
    every = CompiledCount(lambda: Company.objects.all())  # the counter table's sum (companies.models)
    for term in ("alpha", "beta", "gamma", "%", "alpha"):
        assert by_term.run(term=term) == Company.objects.filter(name__icontains=term).count()
    assert every.run() == Company.objects.count() == 3
    make_company("Gamma")
    assert every.run() == 4  # compiled once, counted every time


def test_a_count_is_refused_if_it_does_not_use_its_parameters():
    with pytest.raises(ValueError, match="does not use"):
        CompiledCount(lambda term: Company.objects.all(), term=str).run(term="x")

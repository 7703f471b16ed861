"""A served API request leaves no reference cycles: everything it made is freed as soon as it is
answered, by reference counting, and none of it waits for Python's cyclic GC. The server counts
on it (arv.pipeline.GC_YOUNG_THRESHOLD): a cycle per request would pile up between the rarer
collections and make each a long pause. Real uvicorn (in this process, so its garbage can be
inspected) and PostgreSQL."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

# Where a request's own objects come from (the test's HTTP client, httpx, is not among them).
SERVER_MODULES = ("arv.", "companies.", "storage.", "django.", "ninja.", "uvicorn.", "asgiref.", "psycopg")


@pytest.fixture
def cyclic_garbage() -> Iterator[Callable[[], Counter[str]]]:
    """cyclic_garbage() counts, by type, the server's objects that only the cyclic GC could free,
    left since the test began (the automatic collector is off meanwhile: none is freed uncounted)."""

    def count() -> Counter[str]:
        gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collection finds, to count it
        try:
            gc.collect()
            return Counter(
                f"{type(thing).__module__}.{type(thing).__qualname__}"
                for thing in gc.garbage
                if (type(thing).__module__ or "").startswith(SERVER_MODULES)
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    gc.collect()
    gc.disable()
    try:
        yield count
    finally:
        gc.enable()


def test_api_reads_and_writes_leave_no_reference_cycles(staff, make_company, cyclic_garbage):
    company = make_company("Acyclic")

    def serve(round: int) -> set[int]:
        served = set()
        for n in range(10):
            served.add(staff.get(f"/api/companies/{company.pk}").status_code)
            served.add(staff.get("/api/companies", params={"page_size": 5}).status_code)
            served.add(staff.post("/api/companies", json={"name": f"Acyclic {round} {n}"}).status_code)
            served.add(staff.patch(f"/api/companies/{company.pk}", json={"is_active": n % 2 == 0}).status_code)
        return served

    assert serve(1) == {200, 201}
    cyclic_garbage()  # and with it what an earlier test's server may have left (a closed connection's)
    assert serve(2) == {200, 201}
    assert cyclic_garbage() == Counter()

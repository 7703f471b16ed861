"""The admin's company changelist, logged in over HTTP: pages newest first with exact counts."""

import re

import pytest

from companies.admin import CompanyAdmin
from companies.models import Company
from storage.models import StorageFolder
from testing.admin import log_in

CHANGELIST = "/admin/companies/company/"


@pytest.fixture
def admin(client_for, superuser):
    browser = client_for()
    log_in(browser, next_path=CHANGELIST)
    return browser


@pytest.fixture
def companies(make_company, monkeypatch):
    monkeypatch.setattr(CompanyAdmin, "list_per_page", 3)
    made = [make_company(f"Listed {i}") for i in range(7)]
    StorageFolder.objects.create(company=made[2], name="a", path="a")
    return made


def names(page: str) -> list[str]:
    return re.findall(r'<th class="field-name"><a href="[^"]+">([^<]+)</a>', page)


def test_pages_are_newest_first_with_their_folder_counts(admin, companies):
    newest_first = [c.name for c in Company.objects.order_by("-created_at", "-id")]
    seen = []
    for p in (1, 2, 3):
        page = admin.get(CHANGELIST, params={"p": p})
        assert page.status_code == 200
        seen += names(page.text)
    assert seen == newest_first
    last = admin.get(CHANGELIST, params={"p": 2}).text  # Listed 2 is on page 2 of 3 (8 rows with the default)
    assert re.search(r'<td class="field-folder_count">1</td>', last)


def test_the_count_and_the_search_are_exact(admin, companies):
    page = admin.get(CHANGELIST).text
    assert f"{Company.objects.filter(pk__gt=0).count()} companies" in page
    found = admin.get(CHANGELIST, params={"q": "listed 4"}).text
    assert names(found) == ["Listed 4"]
    assert "1 result" in found and f"{Company.objects.filter(pk__gt=0).count()} total" in found
    assert names(admin.get(CHANGELIST, params={"q": "listed-4"}).text) == ["Listed 4"]  # the slug, by prefix

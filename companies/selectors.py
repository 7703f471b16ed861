"""Reads of companies, each scoped to what the caller may see."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from arv.auth.permissions import require_session
from arv.db.on_loop import read
from arv.db.queries import CompiledCount, CompiledQuery, page_of, plan_for_each_search
from companies.access import companies_visible_to, sees_every_company
from companies.models import Company
from storage.models import StorageFolder


def with_folders_count(companies: QuerySet[Company]) -> QuerySet[Company]:
    # A correlated subquery, not a JOIN + GROUP BY: counted only for the rows returned.
    folders = (
        StorageFolder.objects.filter(company=OuterRef("pk"))
        .order_by()
        .values("company")
        .annotate(n=Count("*"))
        .values("n")
    )
    return companies.annotate(folders_count=Coalesce(Subquery(folders), Value(0)))


@functools.cache
def _companies_with_folders_count() -> QuerySet[Company]:
    # Built once: resolving the subquery annotation is a large part of compiling a
    # list query; each request only clones this and adds its filters. (The detail
    # lookup is compiled whole, once: _company_for_staff / _company_for_member.)
    return with_folders_count(Company.objects.order_by())


@dataclass
class CompanyPage:
    items: list[Company]
    total: int
    page: int
    page_size: int
    total_pages: int


def _listed(user: AbstractBaseUser, search: str | Value | None, is_active: bool | None) -> QuerySet[Company]:
    """The companies a list request names, newest first."""
    companies = companies_visible_to(user, _companies_with_folders_count())
    if search:
        companies = companies.filter(Q(name__icontains=search) | Q(contact_email__icontains=search))
    if is_active is not None:
        companies = companies.filter(is_active=is_active)
    return companies.order_by("-created_at", "-id")


def _stand_in_caller(user_id: int | None) -> AbstractBaseUser:
    # For a compiled query: a stand-in user picks the access rule (no user id, staff: every
    # company; else a member), and the rule needs nothing of it but its id.
    return get_user_model()(pk=user_id, is_staff=user_id is None)


@functools.cache
def _page_query(*, staff: bool, searching: bool, is_active: bool | None) -> CompiledQuery[Company]:
    """A page of the list, compiled once for each shape of request (at most 12): building and
    compiling the queryset was a quarter of a list request's CPU time and over a third of a
    search's (bench/, py-spy). The term is an expression (Value), so the SQL escapes and wraps it."""

    def page(start: int, size: int, user_id: int | None = None, term: str | None = None) -> QuerySet[Company]:
        caller = _stand_in_caller(user_id)
        return page_of(_listed(caller, Value(term) if searching else None, is_active), start, start + size)

    parameters: dict[str, type] = {"start": int, "size": int}
    if not staff:
        parameters["user_id"] = int
    if searching:
        parameters["term"] = str
    return CompiledQuery(page, custom_plans=searching, **parameters)


@functools.cache
def _count_query(*, staff: bool, searching: bool, is_active: bool | None) -> CompiledCount:
    """How many companies a list request names, compiled once per shape as the page is (staff
    without filters: the counter table, companies.models.CompanyQuerySet.count)."""

    def listed(user_id: int | None = None, term: str | None = None) -> QuerySet[Company]:
        return _listed(_stand_in_caller(user_id), Value(term) if searching else None, is_active)

    parameters: dict[str, type] = {} if staff else {"user_id": int}
    if searching:
        parameters["term"] = str
    return CompiledCount(listed, custom_plans=searching, **parameters)


@dataclass
class _ListRequest:
    """What a list request reads, the same on the worker and on the event loop: its page's query
    and values, then (unless the page shows it) its count's."""

    page: int
    page_size: int
    page_query: CompiledQuery[Company]
    count_query: CompiledCount
    values: dict[str, Any]

    @classmethod
    def of(cls, user: AbstractBaseUser, page: int, page_size: int, search: str, is_active: bool | None) -> _ListRequest:
        every = sees_every_company(user)
        shape = {"staff": every, "searching": bool(search), "is_active": is_active}
        values = {"start": (page - 1) * page_size, "size": page_size, "user_id": None if every else user.pk}
        values["term"] = search
        return cls(page, page_size, _page_query(**shape), _count_query(**shape), values)

    def values_for(self, query: CompiledQuery[Any]) -> dict[str, Any]:
        """The values of the parameters `query` takes."""
        return {name: self.values[name] for name in query.parameters}

    def known_total(self, items: list[Company]) -> int | None:
        """The total without counting, when the page shows it: the last page holds the rows after
        the ones before it (a full page, or one past the end, must count)."""
        offset = self.values["start"]
        if len(items) < self.page_size and (items or offset == 0):
            return offset + len(items)
        return None

    def answer(self, items: list[Company], total: int) -> CompanyPage:
        pages = -(-total // self.page_size)
        return CompanyPage(items=items, total=total, page=self.page, page_size=self.page_size, total_pages=pages)


def company_list(
    *, user: AbstractBaseUser, page: int, page_size: int, search: str = "", is_active: bool | None = None
) -> CompanyPage:
    if search:
        plan_for_each_search()
    listing = _ListRequest.of(user, page, page_size, search, is_active)
    items = listing.page_query.run(**listing.values_for(listing.page_query))
    total = listing.known_total(items)
    if total is None:
        total = listing.count_query.run(**listing.values_for(listing.count_query))
    return listing.answer(items, total)


async def company_list_read(
    *, user: AbstractBaseUser, page: int, page_size: int, search: str = "", is_active: bool | None = None
) -> CompanyPage:
    """company_list for an async view: read on the event loop where it may (arv.db.on_loop; a
    search's statements are planned for their terms, never prepared, as plan_for_each_search does)."""
    listing = _ListRequest.of(user, page, page_size, search, is_active)
    items = await read(listing.page_query, **listing.values_for(listing.page_query))
    total = listing.known_total(items)
    if total is None:
        total = await read(listing.count_query, **listing.values_for(listing.count_query))
    return listing.answer(items, total)


def _visible_company(company_id: int, user_id: int | None = None) -> QuerySet[Company]:
    return companies_visible_to(_stand_in_caller(user_id), _companies_with_folders_count()).filter(pk=company_id)


# Every detail request runs one of these: compiled once (arv.db.queries), from the same access rule.
_company_for_staff = CompiledQuery(_visible_company, company_id=int)
_company_for_member = CompiledQuery(_visible_company, company_id=int, user_id=int)


def company_get(*, user: AbstractBaseUser, company_id: int) -> Company:
    query, values = _company_lookup(user, company_id)
    return _the_company(query.run(**values))


async def company_read(*, user: AbstractBaseUser, company_id: int) -> Company:
    """company_get for an async view: read on the event loop where it may (arv.db.on_loop)."""
    query, values = _company_lookup(user, company_id)
    return _the_company(await read(query, **values))


def _company_lookup(user: AbstractBaseUser, company_id: int) -> tuple[CompiledQuery[Company], dict[str, int]]:
    if sees_every_company(user):
        return _company_for_staff, {"company_id": company_id}
    return _company_for_member, {"company_id": company_id, "user_id": user.pk}


def _the_company(found: list[Company]) -> Company:
    if not found:
        raise Http404("No such company.")
    return found[0]


@dataclass
class FolderPage:
    items: list[StorageFolder]
    total: int


def folder_list(*, user: AbstractBaseUser, company_id: int, page: int = 1, page_size: int = 100) -> FolderPage:
    """One page of a company's folders, by path, and how many it has in all."""
    company = company_get(user=user, company_id=company_id)
    require_session(user, "view", StorageFolder)
    folders = company.folders.order_by("path", "id")
    offset = (page - 1) * page_size
    return FolderPage(items=list(folders[offset : offset + page_size]), total=folders.count())

"""Reads of companies, each scoped to what the caller may see."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from arv.db.queries import one_or_none
from companies.access import companies_visible_to
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
    # Built once: resolving the subquery annotation is most of the cost of compiling
    # a detail query; each request only clones this and adds its filter.
    return with_folders_count(Company.objects.order_by())


@dataclass
class CompanyPage:
    items: list[Company]
    total: int
    page: int
    page_size: int
    total_pages: int


def company_list(
    *, user: AbstractBaseUser, page: int, page_size: int, search: str = "", is_active: bool | None = None
) -> CompanyPage:
    companies = companies_visible_to(user, _companies_with_folders_count())
    if search:
        companies = companies.filter(Q(name__icontains=search) | Q(contact_email__icontains=search))
    if is_active is not None:
        companies = companies.filter(is_active=is_active)
    total = companies.count()
    offset = (page - 1) * page_size
    items = list(companies.order_by("-created_at", "-id")[offset : offset + page_size]) if offset < total else []
    return CompanyPage(items=items, total=total, page=page, page_size=page_size, total_pages=-(-total // page_size))


def company_get(*, user: AbstractBaseUser, company_id: int) -> Company:
    company = one_or_none(companies_visible_to(user, _companies_with_folders_count()).filter(pk=company_id))
    if company is None:
        raise Http404("No such company.")
    return company

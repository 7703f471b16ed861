"""Textbook django-ninja with async operations on Django's async ORM (bench/contenders/textbook.py)."""

from __future__ import annotations

import hmac

from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import aget_object_or_404
from django.urls import path
from ninja import NinjaAPI, Query
from ninja.errors import HttpError
from ninja.security import HttpBearer

from arv.auth.models import ApiToken
from bench.contenders.textbook import (
    CompanyIn,
    CompanyOut,
    CompanyPageOut,
    ListFilters,
    created,
    listed,
    new_company,
    page_answer,
    token_parts,
    visible_companies,
)


class BearerToken(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str):
        parts = token_parts(token)
        if parts is None:
            return None
        key_id, secret_hash = parts
        found = await (
            ApiToken.objects.select_related("user")
            .filter(key_id=key_id, revoked_at__isnull=True, user__is_active=True)
            .afirst()
        )
        return found.user if found and hmac.compare_digest(found.secret_hash, secret_hash) else None


api = NinjaAPI(auth=BearerToken(), urls_namespace="textbook_async", docs_url=None)


@api.get("/health", auth=None)
async def health(request):
    return {"status": "ok"}


@api.get("/companies", response=CompanyPageOut)
async def company_list(request, filters: Query[ListFilters]):
    companies = listed(request.auth, filters)
    total = await companies.acount()
    start = (filters.page - 1) * filters.page_size
    return page_answer(filters, [c async for c in companies[start : start + filters.page_size]], total)


@api.post("/companies", response={201: CompanyOut})
async def company_create(request, response: HttpResponse, body: CompanyIn):
    if not request.auth.is_staff:
        raise HttpError(403, "Only staff users may do this.")
    company = new_company(body)
    try:
        await company.asave()
    except IntegrityError:
        raise HttpError(409, "A company with this name or slug already exists.") from None
    return 201, created(request, response, company)


@api.get("/companies/{company_id}", response=CompanyOut)
async def company_detail(request, company_id: int):
    return await aget_object_or_404(visible_companies(request.auth), pk=company_id)


urlpatterns = [path("api/", api.urls)]

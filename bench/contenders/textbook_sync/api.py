"""Textbook django-ninja with sync operations over plain ORM querysets (bench/contenders/textbook.py)."""

from __future__ import annotations

import hmac

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
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
    def authenticate(self, request: HttpRequest, token: str):
        parts = token_parts(token)
        if parts is None:
            return None
        key_id, secret_hash = parts
        found = (
            ApiToken.objects.select_related("user")
            .filter(key_id=key_id, revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        return found.user if found and hmac.compare_digest(found.secret_hash, secret_hash) else None


api = NinjaAPI(auth=BearerToken(), urls_namespace="textbook_sync", docs_url=None)


@api.get("/health", auth=None)
def health(request):
    return {"status": "ok"}


@api.get("/companies", response=CompanyPageOut)
def company_list(request, filters: Query[ListFilters]):
    companies = listed(request.auth, filters)
    total = companies.count()
    start = (filters.page - 1) * filters.page_size
    return page_answer(filters, list(companies[start : start + filters.page_size]), total)


@api.post("/companies", response={201: CompanyOut})
def company_create(request, response: HttpResponse, body: CompanyIn):
    if not request.auth.is_staff:
        raise HttpError(403, "Only staff users may do this.")
    company = new_company(body)
    try:
        with transaction.atomic():  # a savepoint: the request's transaction survives a conflict
            company.save()
    except IntegrityError:
        raise HttpError(409, "A company with this name or slug already exists.") from None
    return 201, created(request, response, company)


@api.get("/companies/{company_id}", response=CompanyOut)
def company_detail(request, company_id: int):
    return get_object_or_404(visible_companies(request.auth), pk=company_id)


urlpatterns = [path("api/", api.urls)]

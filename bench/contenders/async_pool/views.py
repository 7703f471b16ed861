"""Async views on Django's async ORM, with ARV's querysets, access rule, service and schemas."""

from __future__ import annotations

import functools
import hashlib
import hmac

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods

from bench.contenders.errors import answer, bearer_token, error, json_errors
from companies import services
from companies.access import companies_visible_to
from companies.models import Company
from companies.schemas import CompanyCreate, CompanyListQuery, CompanyOut, CompanyPageOut
from companies.selectors import CompanyPage, with_folders_count


async def token_user(token: str):
    """ARV's token format (arv_<key id>_<secret>): the key id finds the row, the secret's hash must match."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != "arv" or len(key_id) != 16 or not secret:
        return None
    user = await (
        get_user_model()
        .objects.filter(api_tokens__key_id=key_id, api_tokens__revoked_at__isnull=True, is_active=True)
        .annotate(token_secret_hash=F("api_tokens__secret_hash"))
        .afirst()
    )
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return user if user and hmac.compare_digest(user.token_secret_hash, digest) else None


def authenticated(view):
    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = bearer_token(request)
        user = await token_user(token) if token else None
        if user is None:
            return error(401, "Unauthorized")
        return await view(request, user, *args, **kwargs)

    return wrapper


def visible_companies(user):
    return companies_visible_to(user, with_folders_count(Company.objects.order_by()))


@require_GET
async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
@json_errors
@authenticated
async def companies(request: HttpRequest, user) -> HttpResponse:
    if request.method == "POST":
        body = CompanyCreate.model_validate_json(request.body)
        create = sync_to_async(transaction.atomic(services.company_create))
        return answer(CompanyOut, await create(user=user, **body.model_dump(exclude_unset=True)), status=201)
    filters = CompanyListQuery.model_validate(request.GET.dict())
    found = visible_companies(user)
    if filters.search:
        found = found.filter(Q(name__icontains=filters.search) | Q(contact_email__icontains=filters.search))
    if filters.is_active is not None:
        found = found.filter(is_active=filters.is_active)
    total = await found.acount()
    size = filters.page_size
    offset = (filters.page - 1) * size
    items = [c async for c in found.order_by("-created_at", "-id")[offset : offset + size]] if offset < total else []
    page = CompanyPage(items=items, total=total, page=filters.page, page_size=size, total_pages=-(-total // size))
    return answer(CompanyPageOut, page)


@require_GET
@json_errors
@authenticated
async def company_detail(request: HttpRequest, user, company_id: int) -> HttpResponse:
    return answer(CompanyOut, await visible_companies(user).aget(pk=company_id))

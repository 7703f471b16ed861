"""Plain sync views over ARV's token check, selectors, services and schemas."""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods

from arv.auth.tokens import token_user
from bench.contenders.errors import answer, bearer_token, error, json_errors
from companies import selectors, services
from companies.schemas import CompanyCreate, CompanyListQuery, CompanyOut, CompanyPageOut


def authenticated(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = bearer_token(request)
        user = token_user(token) if token else None
        if user is None:
            return error(401, "Unauthorized")
        return view(request, user, *args, **kwargs)

    return wrapper


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_http_methods(["GET", "POST"])
@json_errors
@authenticated
def companies(request: HttpRequest, user) -> HttpResponse:
    if request.method == "POST":
        body = CompanyCreate.model_validate_json(request.body)
        company = services.company_create(user=user, **body.model_dump(exclude_unset=True))
        return answer(CompanyOut, company, status=201)
    filters = CompanyListQuery.model_validate(request.GET.dict())
    return answer(CompanyPageOut, selectors.company_list(user=user, **filters.model_dump()))


@require_GET
@json_errors
@authenticated
def company_detail(request: HttpRequest, user, company_id: int) -> HttpResponse:
    return answer(CompanyOut, selectors.company_get(user=user, company_id=company_id))

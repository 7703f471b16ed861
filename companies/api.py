"""/api/companies: thin async views; each runs its service on the request's database worker
(finish_db: shaped as the answer and committed in the same trip, arv.web.shaping)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router

from arv.db.transaction import run_db
from arv.web.schemas import ObjectId, answers, created
from arv.web.shaping import finish_db
from companies import selectors, services
from companies.schemas import (
    CompanyCreate,
    CompanyListQuery,
    CompanyOut,
    CompanyPageOut,
    CompanyStorageIn,
    CompanyUpdate,
)

router = Router(tags=["companies"])

CompanyId = Path[ObjectId]


@router.get("", response=answers(CompanyPageOut))
async def company_list(request: HttpRequest, filters: Query[CompanyListQuery]):
    return await finish_db(CompanyPageOut, selectors.company_list, user=request.auth, **filters.dict())


@router.post("", response=answers({201: CompanyOut}))
async def company_create(request: HttpRequest, response: HttpResponse, body: CompanyCreate):
    company = await finish_db(CompanyOut, services.company_create, user=request.auth, **body.dict(exclude_unset=True))
    return created(request, response, company)


@router.get("/{company_id}", response=answers(CompanyOut))
async def company_detail(request: HttpRequest, company_id: CompanyId):
    return await finish_db(CompanyOut, selectors.company_get, user=request.auth, company_id=company_id)


@router.patch("/{company_id}", response=answers(CompanyOut))
async def company_update(request: HttpRequest, company_id: CompanyId, body: CompanyUpdate):
    return await finish_db(
        CompanyOut, services.company_update, user=request.auth, company_id=company_id, **body.dict(exclude_unset=True)
    )


@router.delete("/{company_id}", response=answers({204: None}))
async def company_delete(request: HttpRequest, company_id: CompanyId):
    await run_db(services.company_delete, user=request.auth, company_id=company_id)
    return HttpResponse(status=204)


@router.put("/{company_id}/storage", response=answers(CompanyOut))
async def company_set_storage(request: HttpRequest, company_id: CompanyId, body: CompanyStorageIn):
    return await finish_db(
        CompanyOut, services.company_set_storage, user=request.auth, company_id=company_id, **body.dict()
    )

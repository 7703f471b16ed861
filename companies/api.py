"""/api/companies and /api/companies/{id}/folders: thin async views; each runs its service on
the request's database worker (finish_db: shaped as the answer and committed in the same trip,
arv.web.shaping)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router, Status

from arv.db.transaction import run_db
from arv.web.schemas import ObjectId, answers, created
from arv.web.shaping import answer_reads, finish_db, finish_insert
from companies import selectors, services
from companies.schemas import (
    CompanyCreate,
    CompanyListQuery,
    CompanyOut,
    CompanyPageOut,
    CompanyStorageIn,
    CompanyUpdate,
)
from storage.schemas import FolderCreate, FolderListQuery, FolderOut, FolderPageOut

router = Router(tags=["companies"])
folders_router = Router(tags=["folders"])  # /api/companies/{id}/folders

CompanyId = Path[ObjectId]


@router.get("", response=answers(CompanyPageOut))
async def company_list(request: HttpRequest, filters: Query[CompanyListQuery]):
    return await answer_reads(
        CompanyPageOut, selectors.company_list_read, selectors.company_list, user=request.auth, **filters.model_dump()
    )


@router.post("", response=answers({201: CompanyOut}))
async def company_create(request: HttpRequest, response: HttpResponse, body: CompanyCreate):
    company = await finish_insert(
        CompanyOut, services.new_company, user=request.auth, **body.model_dump(exclude_unset=True)
    )
    return created(request, response, company)


@router.get("/{company_id}", response=answers(CompanyOut))
async def company_detail(request: HttpRequest, company_id: CompanyId):
    return await answer_reads(
        CompanyOut, selectors.company_read, selectors.company_get, user=request.auth, company_id=company_id
    )


@router.patch("/{company_id}", response=answers(CompanyOut))
async def company_update(request: HttpRequest, company_id: CompanyId, body: CompanyUpdate):
    return await finish_db(
        CompanyOut,
        services.company_update,
        user=request.auth,
        company_id=company_id,
        **body.model_dump(exclude_unset=True),
    )


@router.delete("/{company_id}", response=answers({204: None}))
async def company_delete(request: HttpRequest, company_id: CompanyId):
    await run_db(services.company_delete, user=request.auth, company_id=company_id)
    return HttpResponse(status=204)


@router.put("/{company_id}/storage", response=answers(CompanyOut))
async def company_set_storage(request: HttpRequest, company_id: CompanyId, body: CompanyStorageIn):
    return await finish_db(
        CompanyOut, services.company_set_storage, user=request.auth, company_id=company_id, **body.model_dump()
    )


@folders_router.get("/{company_id}/folders", response=answers(list[FolderOut]))
async def folder_list(
    request: HttpRequest, response: HttpResponse, company_id: CompanyId, paging: Query[FolderListQuery]
):
    # The answer stays a list (API.md); the total of all pages is in X-Total-Count.
    page = await finish_db(
        FolderPageOut, selectors.folder_list, user=request.auth, company_id=company_id, **paging.model_dump()
    )
    response["X-Total-Count"] = str(page.total)
    return page.items


@folders_router.post("/{company_id}/folders", response=answers({201: FolderOut}))
async def folder_create(request: HttpRequest, company_id: CompanyId, body: FolderCreate):
    folder = await finish_db(
        FolderOut, services.folder_create, user=request.auth, company_id=company_id, **body.model_dump()
    )
    return Status(201, folder)

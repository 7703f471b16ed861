"""/api/storage/connections."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router

from arv.db.transaction import run_db, run_outside_db
from arv.web.schemas import ObjectId, answers, created
from arv.web.shaping import finish_db
from storage import selectors, services
from storage.providers import check_connection
from storage.schemas import (
    ConnectionCreate,
    ConnectionListQuery,
    ConnectionOut,
    ConnectionStatsOut,
    ConnectionTestOut,
    ConnectionUpdate,
)

connections_router = Router(tags=["storage connections"])

ConnectionId = Path[ObjectId]


@connections_router.get("/connections", response=answers(list[ConnectionOut]))
async def connection_list(request: HttpRequest, filters: Query[ConnectionListQuery]):
    return await finish_db(
        list[ConnectionOut], selectors.connection_list, user=request.auth, is_active=filters.is_active
    )


@connections_router.post("/connections", response=answers({201: ConnectionOut}))
async def connection_create(request: HttpRequest, response: HttpResponse, body: ConnectionCreate):
    connection = await finish_db(
        ConnectionOut, services.connection_create, user=request.auth, **body.model_dump(exclude_unset=True)
    )
    return created(request, response, connection)


@connections_router.get("/connections/{connection_id}", response=answers(ConnectionOut))
async def connection_detail(request: HttpRequest, connection_id: ConnectionId):
    return await finish_db(ConnectionOut, selectors.connection_get, user=request.auth, connection_id=connection_id)


@connections_router.patch("/connections/{connection_id}", response=answers(ConnectionOut))
async def connection_update(request: HttpRequest, connection_id: ConnectionId, body: ConnectionUpdate):
    fields = body.model_dump(exclude_unset=True)
    return await finish_db(
        ConnectionOut, services.connection_update, user=request.auth, connection_id=connection_id, **fields
    )


@connections_router.delete("/connections/{connection_id}", response=answers({204: None}))
async def connection_delete(request: HttpRequest, connection_id: ConnectionId):
    await run_db(services.connection_delete, user=request.auth, connection_id=connection_id)
    return HttpResponse(status=204)


@connections_router.post("/connections/{connection_id}/test", response=answers(ConnectionTestOut))
async def connection_test(request: HttpRequest, connection_id: ConnectionId):
    # Three steps, so that no database worker waits on the storage: read what the check
    # needs; check it holding no worker; store the outcome in a fresh transaction.
    target = await run_db(services.connection_check_target, user=request.auth, connection_id=connection_id)
    outcome = await run_outside_db(check_connection, target.provider, target.base_path, target.credentials)
    return await finish_db(
        ConnectionTestOut,
        services.connection_record_test,
        user=request.auth,
        connection_id=connection_id,
        outcome=outcome,
    )


@connections_router.get("/connections/{connection_id}/stats", response=answers(ConnectionStatsOut))
async def connection_stats(request: HttpRequest, connection_id: ConnectionId):
    return await finish_db(
        ConnectionStatsOut, selectors.connection_stats, user=request.auth, connection_id=connection_id
    )

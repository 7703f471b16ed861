"""JSON answers for what a view raises: the codes API.md gives, as both contenders write them."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.http import Http404, HttpResponse, JsonResponse
from pydantic import BaseModel, ValidationError

from arv.web.errors import Conflict, InvalidInput


def answer(schema: type[BaseModel], value: object, status: int = 200) -> HttpResponse:
    """A pydantic answer read from model attributes, rendered by pydantic itself."""
    return HttpResponse(schema.model_validate(value).model_dump_json(), content_type="application/json", status=status)


def error(status: int, detail: object) -> JsonResponse:
    if connection.in_atomic_block:  # ATOMIC_REQUESTS: an error answer leaves no writes behind
        transaction.set_rollback(True)
    response = JsonResponse({"detail": detail}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _mapped(exc: Exception) -> JsonResponse:
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return error(404, "Not Found")
    if isinstance(exc, PermissionDenied):
        return error(403, str(exc) or "You may not do this.")
    if isinstance(exc, Conflict):
        return error(409, str(exc))
    if isinstance(exc, IntegrityError):
        return error(409, "Conflict: a unique value is already taken or the object is still in use.")
    if isinstance(exc, InvalidInput):
        return error(422, exc.as_detail())
    if isinstance(exc, ValidationError):
        return error(422, exc.errors(include_url=False, include_context=False))
    if isinstance(exc, ValueError):  # a body that is not JSON
        return error(400, "The body is not a JSON object.")
    raise exc


ERRORS = (Http404, ObjectDoesNotExist, PermissionDenied, Conflict, IntegrityError, InvalidInput, ValueError)


def json_errors(view: Callable) -> Callable:
    """Client errors as JSON answers; anything else stays a 500."""
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_view(request, *args, **kwargs):
            try:
                return await view(request, *args, **kwargs)
            except ERRORS as exc:
                return _mapped(exc)

        return async_view

    @functools.wraps(view)
    def sync_view(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ERRORS as exc:
            return _mapped(exc)

    return sync_view


def bearer_token(request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else ""

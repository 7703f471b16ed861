"""API_MIDDLEWARE: async-only (no thread hops), so every /api/ answer is JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse

BODY_METHODS = {"POST", "PUT", "PATCH"}


class AsyncOnlyMiddleware:
    """Base of every API_MIDDLEWARE class: async-only, so Django's handler adds no thread
    hop around it (arv.asgi.ApiHandler refuses any other)."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)


class JsonApiMiddleware(AsyncOnlyMiddleware):
    """Bodies must be declared JSON (415 otherwise); Django's HTML 404/405 become JSON."""

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in BODY_METHODS and request.body and request.content_type != "application/json":
            return JsonResponse({"detail": "Send the body as JSON (Content-Type: application/json)."}, status=415)
        response = await self.get_response(request)
        if response.status_code in (404, 405) and not response.get("Content-Type", "").startswith("application/json"):
            detail = "Not found." if response.status_code == 404 else f"Method {request.method} is not allowed here."
            json_response = JsonResponse({"detail": detail}, status=response.status_code)
            if "Allow" in response:
                json_response["Allow"] = response["Allow"]
            return json_response
        return response

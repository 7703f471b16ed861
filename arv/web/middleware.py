"""API_MIDDLEWARE: async-only, so the API's stack costs no thread hop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware

from arv.web import error_answers

BODY_METHODS = {"POST", "PUT", "PATCH"}


class AsyncOnlyMiddleware:
    """Base of every API_MIDDLEWARE class: async-only, so Django's handler adds no thread
    hop around it (arv.pipeline.ApiHandler refuses any other)."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)


class ApiSecurityMiddleware(AsyncOnlyMiddleware):
    """What the admin's SecurityMiddleware and CommonMiddleware check, for the API: the Host
    header against ALLOWED_HOSTS (400), the HTTPS redirect, HSTS and the other security
    headers. Django's own SecurityMiddleware does the work; calling its hooks directly
    spares the thread hop Django would add around a sync-capable middleware."""

    # How many distinct Host headers to remember as allowed (the checks are Django's, per request
    # otherwise; a server sees a handful of names).
    KNOWN_HOSTS = 64

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.security = SecurityMiddleware(get_response)
        self.allowed_hosts: set[tuple[str | None, str | None]] = set()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        host = (request.META.get("HTTP_HOST"), request.META.get("HTTP_X_FORWARDED_HOST"))
        if host not in self.allowed_hosts:
            request.get_host()  # raises DisallowedHost (400) for a host not in ALLOWED_HOSTS
            if len(self.allowed_hosts) < self.KNOWN_HOSTS:
                self.allowed_hosts.add(host)
        redirect = self.security.process_request(request)
        if redirect is not None:
            return redirect
        response = await self.get_response(request)
        return self.security.process_response(request, response)


class JsonApiMiddleware(AsyncOnlyMiddleware):
    """Bodies must be declared JSON (415 otherwise)."""

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in BODY_METHODS and request.body and request.content_type != "application/json":
            return error_answers.error(415, error_answers.NOT_JSON)
        return await self.get_response(request)

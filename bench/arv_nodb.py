"""ARV's own stack with a view that touches no database (bench only; production code is untouched).

    .venv/bin/uvicorn bench.arv_nodb:application --no-access-log      # GET /api/bench/ping

The request goes through ARV's pipeline (arv.pipeline) and its ApiHandler: the unit
of work (no database call, so no worker is leased), the API middleware, Django's URL
resolver and a django-ninja operation with a response schema -- everything an API
request costs except authentication and the database.
"""

# ruff: noqa: I001  (arv.asgi must come first: it sets Django up, and ninja needs settings)
from __future__ import annotations

from arv.asgi import application
from arv.pipeline import ApiHandler

from django.urls import path  # noqa: E402
from ninja import NinjaAPI, Schema  # noqa: E402


class PingOut(Schema):
    status: str


api = NinjaAPI(urls_namespace="bench_nodb", docs_url=None, openapi_url=None, auth=None)


@api.get("/bench/ping", response=PingOut)
async def ping(request):
    return {"status": "ok"}


urlpatterns = [path("api/", api.urls)]


class NoDatabaseApiHandler(ApiHandler):
    """ApiHandler resolving against this module's URLs (Django honours request.urlconf)."""

    def create_request(self, scope, body_file):
        request, response = super().create_request(scope, body_file)
        if request is not None:
            request.urlconf = __name__
        return request, response


application.api = NoDatabaseApiHandler()

"""The contenders' URLs: the same paths as ARV's API; `views` is the contender's module."""

from types import ModuleType

from django.urls import path


def api_urls(views: ModuleType) -> list:
    return [
        path("api/health", views.health),
        path("api/companies", views.companies),
        path("api/companies/<int:company_id>", views.company_detail),
    ]

"""Static files storage: collectstatic's manifest when there is one, the apps' files before."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponseBase
from servestatic.middleware import ServeStaticMiddleware
from servestatic.storage import CompressedManifestStaticFilesStorage


class CollectedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed names once `manage.py collectstatic` has run.

    Before it has (an operator ran `migrate` and started the server), the manifest
    storage would fail every page with "Missing staticfiles manifest entry". Here a
    missing manifest means plain names instead, which ServeStatic then serves
    straight from the apps (settings.SERVESTATIC_USE_FINDERS).
    """

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # no manifest loaded: collectstatic has not run
            return name
        return super().stored_name(name)


class _StaticSettings:
    """Django's settings, with ServeStatic's sources chosen by what the storage found."""

    def __init__(self, settings: Any, **overrides: Any) -> None:
        self._settings, self._overrides = settings, overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides[name] if name in self._overrides else getattr(self._settings, name)


def static_files_middleware(
    get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]],
) -> ServeStaticMiddleware:
    """ServeStatic serving collectstatic's output if it ran (the manifest), else the apps' files."""
    collected = bool(getattr(staticfiles_storage, "hashed_files", None)) and not settings.DEBUG
    return ServeStaticMiddleware(
        get_response,
        settings=_StaticSettings(settings, SERVESTATIC_USE_MANIFEST=collected, SERVESTATIC_USE_FINDERS=not collected),
    )

"""Deploy checks for what a production server needs beyond Django's own (`manage.py check --deploy`).

- arv.W201 collectstatic has not run: the admin's files then come from the apps, unhashed
  and without long-lived caching (arv.web.static);
- arv.W202 SECRET_KEY is the development key settings.py falls back to with DJANGO_DEBUG
  (Django's security.W009 accepts it: it is long and not "django-insecure-").
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

DEVELOPMENT_SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG"


def check_static_files_collected(app_configs: Any = None, **kwargs: Any) -> list:
    from django.contrib.staticfiles.storage import staticfiles_storage  # not at import: settings.py imports this

    manifest = staticfiles_storage.path(staticfiles_storage.manifest_name)
    if staticfiles_storage.exists(staticfiles_storage.manifest_name):
        return []
    return [
        checks.Warning(
            f"collectstatic has not run: no manifest at {manifest}; the admin's files are served unhashed "
            "from the apps, without long-lived caching",
            hint="Run `manage.py collectstatic --noinput` (into ARV_STATIC_ROOT) before starting the server.",
            id="arv.W201",
        )
    ]


def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list:
    if settings.SECRET_KEY != DEVELOPMENT_SECRET_KEY:
        return []
    return [
        checks.Warning(
            "SECRET_KEY is ARV's development key (DJANGO_SECRET_KEY is unset and DJANGO_DEBUG is on): "
            "sessions and CSRF tokens can be forged by anyone who has the source",
            hint='Set DJANGO_SECRET_KEY: python -c "import secrets; print(secrets.token_urlsafe(50))".',
            id="arv.W202",
        )
    ]

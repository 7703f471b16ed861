"""What both contenders take from ARV's settings, and the one database entry they start from."""

import os

import dj_database_url

from arv.settings import *  # noqa: F403 - the apps, templates, auth and time settings: ARV's own

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
API_MIDDLEWARE = []


def database(**extra):
    """DATABASE_URL with Django's defaults (client-side binding, no prepared statements) plus extra."""
    return {**dj_database_url.parse(os.environ["DATABASE_URL"]), **extra}

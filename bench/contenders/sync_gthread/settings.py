"""Sync Django under gunicorn gthread: persistent connections (one per thread), health checks,
one transaction per request."""

from bench.contenders.settings_base import *  # noqa: F403
from bench.contenders.settings_base import database

DATABASES = {"default": database(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True, ATOMIC_REQUESTS=True)}
ROOT_URLCONF = "bench.contenders.sync_gthread.urls"
WSGI_APPLICATION = "bench.contenders.sync_gthread.wsgi.application"

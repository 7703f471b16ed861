"""Textbook sync Django under gunicorn gthread: persistent connections (one per thread), health
checks, one transaction per request (ATOMIC_REQUESTS)."""

from bench.contenders.settings_base import *  # noqa: F403
from bench.contenders.settings_base import database

DATABASES = {"default": database(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True, ATOMIC_REQUESTS=True)}
ROOT_URLCONF = "bench.contenders.textbook_sync.api"
WSGI_APPLICATION = "bench.contenders.textbook_sync.wsgi.application"

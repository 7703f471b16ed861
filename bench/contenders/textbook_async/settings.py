"""Textbook async Django under uvicorn: Django's psycopg pool (CONN_MAX_AGE must be 0 with it). No
ATOMIC_REQUESTS: Django refuses it with async views; the create's INSERT is its own transaction."""

from bench.contenders.settings_base import *  # noqa: F403
from bench.contenders.settings_base import database

POOL_MAX_SIZE = 30  # one ARV process's bound: DB_POOL_SIZE 20 + DB_MAX_OVERFLOW 10
DATABASES = {
    "default": database(CONN_MAX_AGE=0, OPTIONS={"pool": {"min_size": 4, "max_size": POOL_MAX_SIZE, "timeout": 10}})
}
ROOT_URLCONF = "bench.contenders.textbook_async.api"
ASGI_APPLICATION = "bench.contenders.textbook_async.asgi.application"

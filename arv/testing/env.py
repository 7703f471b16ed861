"""pytest plugin (-p arv.testing.env): environment defaults for tests, set before Django loads."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "false")
# Small bounds make the connection tests fast; tests that need other values start their own server.
os.environ.setdefault("DB_POOL_SIZE", "4")
os.environ.setdefault("DB_MAX_OVERFLOW", "2")
os.environ.setdefault("DB_POOL_TIMEOUT", "5")
# Tests never read the operator's .env (bin/serve writes one): settings load this instead.
os.environ["ARV_ENV_FILE"] = os.devnull

"""A production deployment (README, "Deploying"): Django's and ARV's deploy checks, and secrets stay out of logs.

`manage.py check --deploy` runs as an operator runs it (a subprocess with only the
operator's environment); the checks that need the database (`--database default`)
run against the test database, and through a real PgBouncer for the pooler checks.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from storage.credentials import derived_key
from testing.pgbouncer import PGBOUNCER, pgbouncer
from testing.postgres import current_database_url
from testing.servers import PROJECT_DIR

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),  # 67 characters, as `secrets` makes them
    "DJANGO_HTTPS": "true",
    "DJANGO_ALLOWED_HOSTS": "arv.example.com",
    # SQLite (no DATABASE_URL) runs one transaction at a time: a small pool (arv.W102).
    "DB_POOL_SIZE": "2",
    "DB_MAX_OVERFLOW": "2",
}
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="checks the PostgreSQL test database")


@pytest.fixture
def production_env(collected_static) -> dict[str, str]:
    return {**PRODUCTION_ENV, "ARV_STATIC_ROOT": str(collected_static)}


def _check_deploy(env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING", *options],
        cwd=PROJECT_DIR,
        # Only what an operator sets; not the project's .env (tests never read it).
        env={"PATH": "/usr/bin:/bin", "ARV_ENV_FILE": os.devnull, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_production_environment(production_env):
    result = _check_deploy(production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_https(production_env):
    result = _check_deploy({**production_env, "DJANGO_HTTPS": "false"})
    assert result.returncode != 0
    for warning in ["security.W004", "security.W008", "security.W012", "security.W016"]:  # HSTS, redirect, cookies
        assert warning in result.stderr


def test_check_deploy_reports_a_missing_collectstatic(production_env, tmp_path):
    result = _check_deploy({**production_env, "ARV_STATIC_ROOT": str(tmp_path / "never-collected")})
    assert result.returncode != 0
    assert "arv.W201" in result.stderr and "collectstatic has not run" in result.stderr


def test_check_deploy_reports_the_development_secret_key(production_env):
    env = {key: value for key, value in production_env.items() if key != "DJANGO_SECRET_KEY"}
    result = _check_deploy({**env, "DJANGO_DEBUG": "true"})
    assert result.returncode != 0
    assert "arv.W202" in result.stderr and "security.W018" in result.stderr  # the key, and DEBUG itself


def test_check_deploy_reports_a_pool_too_large_for_sqlite(production_env):
    result = _check_deploy({**production_env, "DB_POOL_SIZE": "20", "DB_MAX_OVERFLOW": "10"})
    assert result.returncode != 0
    assert "arv.W102" in result.stderr and "DB_POOL_SIZE + DB_MAX_OVERFLOW = 30 on SQLite" in result.stderr


def test_check_deploy_refuses_pgbouncer_on_sqlite(production_env):
    result = _check_deploy({**production_env, "DB_PGBOUNCER": "true"})
    assert result.returncode != 0
    assert "arv.E105" in result.stderr


# --- checks that ask the database (--database default) ---------------------------------------------


@pytest.fixture
def database_env(production_env, transactional_db, settings) -> dict[str, str]:
    """The production environment on the test database, with the key that encrypted its storage
    credentials (this process's, derived from its secret key), as an operator's would have."""
    keys = derived_key(settings.SECRET_KEY).decode()
    return {**production_env, "DATABASE_URL": current_database_url(), "ARV_CREDENTIALS_KEYS": keys}


def _check_database(env: dict[str, str]) -> subprocess.CompletedProcess:
    return _check_deploy(env, "--database", "default")


@postgresql_only
def test_check_deploy_lists_credentials_no_configured_key_decrypts(database_env):
    from storage.models import StorageConnection

    connection = StorageConnection.objects.create(name="Keyed", provider="minio", credentials={"secret_key": "s"})
    result = _check_database({**database_env, "ARV_CREDENTIALS_KEYS": ""})  # the key that encrypted them is gone
    assert result.returncode != 0
    assert "storage.W001" in result.stderr and f"{connection.pk} (Keyed)" in result.stderr, result.stderr


@postgresql_only
def test_the_connection_budget_check_is_quiet_when_the_pool_fits(database_env):
    result = _check_database(database_env)
    assert result.returncode == 0, result.stdout + result.stderr


@postgresql_only
def test_check_deploy_reports_a_connection_budget_that_cannot_fit(database_env):
    # 3 processes x (150 + 0) connections cannot fit in PostgreSQL's max_connections (100 here).
    result = _check_database({**database_env, "WEB_CONCURRENCY": "3", "DB_POOL_SIZE": "150", "DB_MAX_OVERFLOW": "0"})
    assert result.returncode != 0
    assert "arv.W101" in result.stderr
    assert "connection budget does not fit: 3 processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW = 150)" in result.stderr


@postgresql_only
def test_arv_server_processes_counts_every_server_on_the_database(database_env):
    # 40 processes (e.g. 10 hosts x 4 workers) x (2 + 2): more than PostgreSQL's 100.
    result = _check_database({**database_env, "WEB_CONCURRENCY": "1", "ARV_SERVER_PROCESSES": "40"})
    assert result.returncode != 0
    assert "40 processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW = 4) = 160" in result.stderr
    assert "processes from ARV_SERVER_PROCESSES" in result.stderr


@postgresql_only
def test_the_budget_counts_each_database_pool_on_its_server(database_env):
    # A replica URL naming the primary's own server: its pool's connections land there too,
    # so 1 process x 4 x 2 pools fits, and 13 processes x 4 x 2 = 104 do not (max_connections 100).
    env = {**database_env, "DATABASE_REPLICA_URLS": current_database_url(), "ARV_SERVER_PROCESSES": "13"}
    result = _check_deploy(env, "--database", "default", "--database", "replica_1")
    assert result.returncode != 0
    for database in ("default", "replica_1"):
        assert (
            f"{database}: connection budget does not fit: 13 processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW = 4) "
            "x 2 pools on this server = 104" in result.stderr
        )
    fits = _check_deploy({**env, "ARV_SERVER_PROCESSES": "1"}, "--database", "default", "--database", "replica_1")
    assert fits.returncode == 0, fits.stdout + fits.stderr


needs_pgbouncer = pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="pgbouncer is not installed")


@postgresql_only
@needs_pgbouncer
def test_check_deploy_reports_pgbouncer_that_db_pgbouncer_does_not_know(database_env):
    with pgbouncer() as port:
        through = {**database_env, "DATABASE_URL": current_database_url().replace(":5432/", f":{port}/")}
        unknown = _check_database(through)
        known = _check_database({**through, "DB_PGBOUNCER": "true"})
    assert "arv.W103" in unknown.stderr and "connection pooler" in unknown.stderr
    assert known.returncode == 0, known.stdout + known.stderr


@postgresql_only
def test_check_deploy_reports_db_pgbouncer_on_a_direct_connection(database_env):
    result = _check_database({**database_env, "DB_PGBOUNCER": "true"})
    assert result.returncode != 0
    assert "arv.W104" in result.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="starts a server on the PostgreSQL test database")
def test_storage_credentials_never_appear_in_the_sql_echo(start_server, django_user_model):
    sentinel = f"SENTINEL-{secrets.token_hex(16)}"
    token = token_issue(user=django_user_model.objects.create_user("ops", is_staff=True))[1]
    server = start_server(DB_ECHO="true")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        created = client.post(
            "/api/storage/connections",
            # Quotes and backslashes first: the secret must not escape with a literal that ends early.
            json={
                "name": "Bucket",
                "provider": "minio",
                "credentials": {"a": "it's \\' '' \\", "secret_key": sentinel},
            },
        )
        assert created.status_code == 201, created.text
        connection_id = created.json()["id"]
        # Statements that read and rewrite the row, credentials included.
        assert client.post(f"/api/storage/connections/{connection_id}/test").status_code == 200
        assert client.patch(f"/api/storage/connections/{connection_id}", json={"name": "Bucket 2"}).status_code == 200
    server.terminate()
    output = server.output()
    assert 'INSERT INTO "storage_storageconnection"' in output  # the echo is on and logged the write
    assert sentinel not in output

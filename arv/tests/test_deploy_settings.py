"""A production deployment (README, "Deploying"): Django's deploy checks pass, and secrets stay out of logs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from arv.testing.servers import PROJECT_DIR

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),  # 67 characters, as `secrets` makes them
    "DJANGO_HTTPS": "true",
    "DJANGO_ALLOWED_HOSTS": "arv.example.com",
}


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        # Only what an operator sets; not the project's .env (tests never read it).
        env={"PATH": "/usr/bin:/bin", "ARV_ENV_FILE": os.devnull, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_production_environment():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_https():
    result = _check_deploy({**PRODUCTION_ENV, "DJANGO_HTTPS": "false"})
    assert result.returncode != 0
    for warning in ["security.W004", "security.W008", "security.W012", "security.W016"]:  # HSTS, redirect, cookies
        assert warning in result.stderr


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

"""`manage.py dbstatus` for scripts: --json, and a one-line reason with exit status 1 when the
database cannot be reached (each server process's pools: test_metrics.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command

from testing.servers import PROJECT_DIR, free_port


def dbstatus(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "dbstatus", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url, "DB_CONNECT_TIMEOUT": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_json_shows_the_bound_and_the_database(settings):
    out = StringIO()
    call_command("dbstatus", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["bound_per_process"] == settings.DATABASE_POOL.max_connections
    assert status["pool_size"] == settings.DATABASE_POOL.size
    assert status["database"]["reachable"] is True
    if status["vendor"] == "postgresql":
        assert status["database"]["idle_in_transaction"] == 0
        assert status["database"]["max_connections"] > 0
    assert status["servers"] is None  # metrics are off


@pytest.mark.parametrize("mode", [(), ("--json",)], ids=["text", "json"])
def test_an_unreachable_database_is_one_line_and_exit_status_1(mode):
    closed = f"postgres://postgres@127.0.0.1:{free_port()}/arv"  # nothing listens there
    result = dbstatus(*mode, database_url=closed)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("CommandError: the database cannot be reached: OperationalError")
    assert "refused" in line.lower()
    if mode:
        status = json.loads(result.stdout)
        assert status["database"]["reachable"] is False
        assert "refused" in status["database"]["reason"].lower()
    else:
        assert "database: cannot be reached" in result.stdout

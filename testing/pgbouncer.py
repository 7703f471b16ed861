"""Run the API tests through PgBouncer in transaction-pooling mode.

    python -m testing.pgbouncer [pytest arguments]

Starts Debian's pgbouncer on a free loopback port in front of the local PostgreSQL
(DATABASE_URL's server), points DATABASE_URL at it with DB_PGBOUNCER=true, runs pytest,
stops pgbouncer and drops the test database it left behind.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from testing.servers import PROJECT_DIR, free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
DATABASE = "arv_pgbouncer"


@contextmanager
def pgbouncer(server_host: str = "127.0.0.1", server_port: int = 5432, user: str = "postgres") -> Iterator[int]:
    """pgbouncer (pool_mode=transaction) on a free port, forwarding every database to the server."""
    workdir = Path(tempfile.mkdtemp(prefix="arv-pgbouncer-"))
    port = free_port()
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={server_host} port={server_port} user={user}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        "default_pool_size = 10\nmax_client_conn = 500\n"
        # DB_STATEMENT_TIMEOUT's startup option cannot pass a transaction pooler (README).
        "ignore_startup_parameters = options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n"
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        postgres = pwd.getpwnam("postgres")
        os.chown(workdir, postgres.pw_uid, postgres.pw_gid)
        os.chown(config, postgres.pw_uid, postgres.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={port} user={user} dbname=postgres", connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {(workdir / 'pgbouncer.log').read_text()}") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def main(pytest_args: list[str]) -> int:
    with pgbouncer() as port:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/{DATABASE}",
            "DB_PGBOUNCER": "true",
        }
        # --reuse-db: pytest-django must not drop its test database at the end, while
        # pgbouncer still holds server connections to it; --create-db: start afresh.
        command = [sys.executable, "-m", "pytest", "--reuse-db", "--create-db", *pytest_args]
        result = subprocess.run(command, cwd=PROJECT_DIR, env=env)
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "test_{DATABASE}" WITH (FORCE)')
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

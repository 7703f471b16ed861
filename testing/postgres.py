"""What the database sees of ARV, and a throwaway PostgreSQL cluster for outage tests."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from testing.servers import free_port

PG_BIN = Path(os.environ.get("ARV_PG_BIN", "/usr/lib/postgresql/15/bin"))
APPLICATION_NAME = "arv"


class DatabaseObserver:
    """A separate psycopg connection (not Django's) watching ARV's sessions on one database."""

    def __init__(self, conninfo: str, dbname: str, ignore_pids: tuple[int, ...] = ()) -> None:
        self.dbname = dbname
        self.ignore_pids = list(ignore_pids)  # e.g. the test process's own Django connection
        self.conn = psycopg.connect(conninfo, autocommit=True, application_name="arv-test-observer")

    def close(self) -> None:
        self.conn.close()

    def backends(self, state: str | None = None) -> list[tuple[int, str]]:
        """(pid, state) of ARV's backends on the database."""
        query = (
            "SELECT pid, coalesce(state, '') FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = %s AND NOT pid = ANY(%s)"
        )
        params: list[object] = [self.dbname, APPLICATION_NAME, self.ignore_pids]
        if state is not None:
            query += " AND state = %s"
            params.append(state)
        return self.conn.execute(query, params).fetchall()

    def sessions_opened(self) -> int:
        """pg_stat_database.sessions: every session ever opened on the database (all clients)."""
        time.sleep(1.2)  # backends flush their statistics about once a second
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        (count,) = self.conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.dbname]
        ).fetchone()
        return count

    def terminate_all(self) -> int:
        rows = self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = %s AND NOT pid = ANY(%s)",
            [self.dbname, APPLICATION_NAME, self.ignore_pids],
        ).fetchall()
        return len(rows)


class PeakBackends:
    """Samples ARV's backends on the database while a load runs."""

    def __init__(self, observer: DatabaseObserver) -> None:
        self.observer, self.peak, self._stop = observer, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, len(self.observer.backends()))
            time.sleep(0.01)

    def __enter__(self) -> PeakBackends:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    # PostgreSQL refuses to run as root; the Debian package's "postgres" user owns the cluster.
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


class ThrowawayCluster:
    """A private PostgreSQL cluster on a free port: tests may stop and start it at will."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="arv-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
        try:
            self.make_data()
            self.start()
        except BaseException:
            self.destroy()
            raise

    def make_data(self) -> None:
        """The data directory: a fresh cluster (testing.clusters makes standbys by copying one)."""
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def start(self) -> None:
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "log"),
                "-w",
                "start",
                "-o",
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            ]
        )

    def stop(self) -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def current_database_url() -> str:
    """DATABASE_URL of the test database Django is using (for servers started by tests)."""
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def current_database_conninfo() -> str:
    """libpq conninfo of the test database, for psycopg connections beside Django's."""
    from django.db import connection

    s = connection.settings_dict
    return f"host={s['HOST'] or '127.0.0.1'} port={s['PORT'] or 5432} user={s['USER']} dbname={s['NAME']}"


def hold_lock_on_companies() -> psycopg.Connection:
    """A transaction that blocks every query on companies until it is closed."""
    blocker = psycopg.connect(current_database_conninfo(), application_name="arv-test-blocker")
    blocker.execute("LOCK TABLE companies_company IN ACCESS EXCLUSIVE MODE")
    return blocker

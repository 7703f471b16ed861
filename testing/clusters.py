"""Replicated PostgreSQL clusters for failover and replica tests: a primary and streaming standbys.

Each server is a ThrowawayCluster (testing.postgres) on a free loopback port, run as the
postgres user: the primary made by initdb, each standby copied from it with
`pg_basebackup -R -X stream -c fast`. The tests then do to them what an operator's tooling
(Patroni, a managed service) does: stop the primary (fast), promote a standby, bring the old
primary back as a standby of the new one (pg_rewind, else a fresh base backup), pause or
delay a standby's replay.

    with ReplicatedCluster(standbys=1) as cluster:
        url = cluster.multi_host_url("arv")       # postgres://postgres@127.0.0.1:p1,127.0.0.1:p2/arv
        cluster.switchover()                      # stop the primary, promote the standby
        cluster.rejoin(cluster.standbys[0])       # the old primary follows the new one

The fixtures at the end (`replicated_cluster`) always stop the servers and remove their
directories, whatever the test did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from testing.postgres import PG_BIN, ThrowawayCluster, _as_postgres
from testing.servers import PROJECT_DIR

# What a primary needs so that standbys can stream from it and a stopped primary can be
# rewound onto a new timeline (pg_rewind needs wal_log_hints or data checksums).
PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
    "wal_log_hints": "on",
    "wal_keep_size": "64MB",  # a standby stopped for a moment can catch up without an archive
}
REPLICATION_HBA = "host replication all 127.0.0.1/32 trust\n"
# How long a test waits for a server to reach a state (promotion, catch-up) before failing.
WAIT_SECONDS = 30.0


class Server(ThrowawayCluster):
    """One PostgreSQL server of a replicated cluster: a primary (initdb) or a standby (copied)."""

    def __init__(self, name: str, source: Server | None = None) -> None:
        self.name = name
        self.source = source  # the server this one was copied from (a standby), else None
        super().__init__()

    def make_data(self) -> None:
        if self.source is None:
            super().make_data()
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.writelines(f"{name} = '{value}'\n" for name, value in PRIMARY_SETTINGS.items())
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(REPLICATION_HBA)
        else:
            self.base_backup(self.source)

    def base_backup(self, source: Server) -> None:
        """This server's data becomes a fresh copy of source's, set up to stream from it (-R)."""
        _as_postgres(
            [
                str(PG_BIN / "pg_basebackup"),
                "-D",
                str(self.data),
                "-d",
                source.conninfo(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), autocommit=True, application_name="arv-test-cluster")

    def query(self, sql: str, params: tuple | list = (), dbname: str = "postgres") -> list[tuple]:
        with self.connect(dbname) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"], capture_output=True
        )
        return result.returncode == 0

    def in_recovery(self) -> bool:
        return self.query("SELECT pg_is_in_recovery()")[0][0]

    def promote(self) -> None:
        """pg_ctl promote, waiting until the server accepts writes."""
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(int(WAIT_SECONDS)), "promote"])
        wait_for(lambda: not self.in_recovery(), f"{self.name} to leave recovery")

    def pause_replay(self) -> None:
        self.query("SELECT pg_wal_replay_pause()")
        wait_for(lambda: self.query("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused", "replay to pause")

    def resume_replay(self) -> None:
        self.query("SELECT pg_wal_replay_resume()")

    def set_apply_delay(self, milliseconds: int) -> None:
        """recovery_min_apply_delay: the standby applies each commit this long after it was made."""
        self.query(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(milliseconds)}ms'")
        self.query("SELECT pg_reload_conf()")

    def replay_lsn(self) -> str:
        return self.query("SELECT pg_last_wal_replay_lsn()::text")[0][0]

    def current_lsn(self) -> str:
        return self.query("SELECT pg_current_wal_lsn()::text")[0][0]

    def has_replayed(self, lsn: str) -> bool:
        return self.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0]

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""


class ReplicatedCluster:
    """A primary and `standbys` streaming standbys on loopback; `servers` in the order made."""

    def __init__(self, standbys: int = 1) -> None:
        self.servers: list[Server] = []
        try:
            self.primary = self._add(Server("pg-a"))
            self.standbys = [self._add(Server(f"pg-{chr(ord('b') + i)}", source=self.primary)) for i in range(standbys)]
            for standby in self.standbys:
                self.wait_for_streaming(standby)
        except BaseException:
            self.destroy()
            raise

    def _add(self, server: Server) -> Server:
        self.servers.append(server)
        return server

    def __enter__(self) -> ReplicatedCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def destroy(self) -> None:
        for server in self.servers:
            server.destroy()

    # -- URLs --------------------------------------------------------------------------

    def multi_host_url(self, dbname: str, *servers: Server, **params: str) -> str:
        """libpq's multi-host URL over the given servers (default: all, primary first)."""
        hosts = ",".join(server.address for server in servers or self.servers)
        query = "&".join(f"{name}={value}" for name, value in params.items())
        return f"postgres://postgres@{hosts}/{dbname}" + (f"?{query}" if query else "")

    def create_database(self, name: str) -> None:
        """On the primary; the standbys get it by replication (waited for)."""
        self.primary.create_database(name)
        self.wait_for_replay()

    # -- what an operator's tooling does ---------------------------------------------

    def wait_for_streaming(self, standby: Server) -> None:
        """Until the standby streams from its primary (a walreceiver in state streaming)."""
        wait_for(
            lambda: standby.query("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")[0][0] == 1,
            f"{standby.name} to stream",
        )

    def wait_for_replay(self, *standbys: Server) -> None:
        """Until the standbys have replayed everything the primary has written so far."""
        lsn = self.primary.current_lsn()
        for standby in standbys or self.standbys:
            wait_for(lambda s=standby: s.has_replayed(lsn), f"{standby.name} to replay {lsn}")

    def switchover(self, to: Server | None = None) -> tuple[Server, Server, float]:
        """Stop the primary (fast: sessions end, a shutdown checkpoint reaches the standbys),
        promote `to` (default: the first standby). Returns (old, new, time.monotonic() when
        the promotion finished). The old primary stays stopped: rejoin() brings it back."""
        new = to or self.standbys[0]
        old = self.primary
        old.stop()
        new.promote()
        promoted_at = time.monotonic()
        self.primary = new
        self.standbys = [server for server in self.servers if server is not new and server is not old]
        return old, new, promoted_at

    def rejoin(self, old: Server) -> None:
        """The stopped old primary comes back as a standby of the current primary: pg_rewind
        onto the new timeline (-R writes standby.signal and primary_conninfo), else, if that
        fails, a fresh base backup."""
        # pg_rewind reads the source's timeline from its control file, which a promoted server
        # updates at its next checkpoint (pg_rewind's documentation): make it now.
        self.primary.query("CHECKPOINT")
        try:
            _as_postgres(
                [str(PG_BIN / "pg_rewind"), "-D", str(old.data), "--source-server", self.primary.conninfo(), "-R"]
            )
            old.start()
        except subprocess.CalledProcessError:
            shutil.rmtree(old.data)
            old.base_backup(self.primary)
            old.start()
        self.standbys.append(old)
        self.wait_for_streaming(old)


def manage(database_url: str, *args: str) -> str:
    """`manage.py <args>` on another database (its stdout)."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def migrated_database(cluster: ReplicatedCluster, name: str) -> str:
    """ARV's database `name` on the cluster's primary, migrated and replicated to its standbys,
    with a staff API token (returned)."""
    cluster.create_database(name)
    url = cluster.primary.url(name)
    manage(url, "migrate", "--noinput")
    token = manage(url, "create_api_token", "ops", "--staff").strip().splitlines()[-1]
    cluster.wait_for_replay()
    return token


def wait_for(condition, what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll condition() (connection errors count as not yet) until it holds, else fail naming what."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g}s for {what}")
        time.sleep(0.05)


@pytest.fixture
def replicated_cluster() -> Iterator[ReplicatedCluster]:
    """A primary and one streaming standby, both gone after the test (whatever it did)."""
    with ReplicatedCluster(standbys=1) as cluster:
        yield cluster

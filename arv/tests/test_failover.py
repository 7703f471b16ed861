"""Failover without a restart, and readiness (issue 19): ARV under uvicorn with libpq's
multi-host URL over a real primary and streaming standby (testing.clusters).

The switchover test prints its figures (pytest -s): what a switchover cost the clients.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from testing.clusters import ReplicatedCluster, migrated_database, wait_for

pytestmark = pytest.mark.slow

# A server small enough for a shared machine; connect_timeout short so a dead host costs little.
SERVER_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_CONNECT_TIMEOUT": "2", "DB_WARMUP_SECONDS": "0.5"}
# Bounds of each load phase. Clients pace their writes so the load spans the switchover however
# fast the machine is (unpaced, 400 writes could all be answered before the promotion ended).
LOAD_SECONDS = 20.0
LOAD_REQUESTS = 1000
WRITE_PACE_SECONDS = 0.05


@dataclass
class Write:
    name: str
    status: int
    started: float
    answered: float
    company_id: int | None = None
    retry_after: str | None = None
    read_status: int | None = None  # the GET of the company just created


@dataclass
class CompanyWriters:
    """Client threads that create companies (unique names) and read each one back."""

    url: str
    token: str
    label: str
    clients: int = 4
    writes: list[Write] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        self._deadline = time.monotonic() + LOAD_SECONDS

    def _client(self, number: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            for i in range(LOAD_REQUESTS // self.clients):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    return
                write = Write(f"fo-{self.label}-{number}-{i}", 0, time.monotonic(), 0.0)
                answer = client.post("/api/companies", json={"name": write.name})
                write.status, write.answered = answer.status_code, time.monotonic()
                write.retry_after = answer.headers.get("Retry-After")
                if answer.status_code == 201:
                    write.company_id = answer.json()["id"]
                    write.read_status = client.get(f"/api/companies/{write.company_id}").status_code
                with self._lock:
                    self.writes.append(write)
                if answer.status_code == 503:
                    time.sleep(0.1)  # a client backing off, briefly (Retry-After would hide how soon writes resume)
                else:
                    time.sleep(WRITE_PACE_SECONDS)

    def __enter__(self) -> CompanyWriters:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def statuses(self) -> list[int]:
        return [write.status for write in self.writes]

    def first_write_after(self, moment: float) -> float | None:
        """Seconds from moment to the first 201 answered after it."""
        answered = [w.answered for w in self.writes if w.status == 201 and w.answered > moment]
        return min(answered) - moment if answered else None


def arv_sessions(server) -> int:
    """ARV's sessions on a server of the cluster (application_name arv)."""
    return server.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'arv'")[0][0]


METRICS_TOKEN = "failover-metrics-token"


def metrics(url: str) -> dict[str, float]:
    """/metrics as {series with its labels but pid: value}, summed over processes."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = re.sub(r',?pid="\d+"', "", name).replace("{,", "{")
            values[name] = values.get(name, 0) + float(value)
    return values


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/api/health/ready", timeout=10)


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    wait_for(lambda: ready(url).status_code == 200, "ARV to be ready", timeout)


def test_a_switchover_under_load_loses_nothing_and_writes_resume_without_restart(start_server):
    with ReplicatedCluster(standbys=1) as cluster:
        token = migrated_database(cluster, "arv_failover")
        server = start_server(
            database_url=cluster.multi_host_url("arv_failover"), ARV_METRICS_TOKEN=METRICS_TOKEN, **SERVER_ENV
        )
        wait_until_ready(server.url)
        rounds: list[dict] = []
        all_writes: list[Write] = []
        for label in ("there", "back"):
            with CompanyWriters(server.url, token, label) as load:
                time.sleep(2)  # writes flowing to the primary
                stopping = time.monotonic()
                old, new, promoted_at = cluster.switchover()
                wait_for(lambda at=promoted_at: load.first_write_after(at) is not None, "a write after promotion", 20)
                cluster.rejoin(old)  # the old primary follows the new one
                sessions_on_old = []
                for _ in range(10):  # writes go on: none may reach the old primary, now a standby
                    sessions_on_old.append(arv_sessions(old))
                    time.sleep(0.2)
            statuses = load.statuses()
            rounds.append(
                {
                    "switchover": f"{old.address} -> {new.address}",
                    "requests": len(statuses),
                    "201": statuses.count(201),
                    "503": statuses.count(503),
                    "500": statuses.count(500),
                    "other": sorted({s for s in statuses} - {201, 503, 500}),
                    "promotion to first write (s)": round(load.first_write_after(promoted_at), 2),
                    "fast stop + promotion took (s)": round(promoted_at - stopping, 2),
                    "ARV sessions on the old primary after it rejoined": max(sessions_on_old),
                }
            )
            all_writes.extend(load.writes)
            assert 500 not in statuses
            assert set(statuses) <= {201, 503}, statuses
            assert all(w.retry_after for w in load.writes if w.status == 503)
            assert max(sessions_on_old) == 0
            wait_until_ready(server.url)  # the pool is whole again, on the new primary

        # Every 201's company is on the primary now, once, with the id it was answered with.
        created = [w for w in all_writes if w.status == 201]
        rows = dict(
            cluster.primary.query(
                "SELECT name, id FROM companies_company WHERE name LIKE 'fo-%%'", dbname="arv_failover"
            )
        )
        lost = [w.name for w in created if rows.get(w.name) != w.company_id]
        # A write applied twice would be a second row, or a 409 for its name (asserted absent above).
        duplicated = cluster.primary.query(
            "SELECT count(*) FROM (SELECT lower(name) FROM companies_company GROUP BY 1 HAVING count(*) > 1) AS d",
            dbname="arv_failover",
        )[0][0]
        in_doubt = [w.name for w in all_writes if w.status == 503 and w.name in rows]
        # Read back at once: 200, or 503 if the switchover came between the write and the read.
        read_statuses = sorted({w.read_status for w in created})
        failover_lines = [line for line in server.output().splitlines() if "database failover" in line]
        run_again = server.output().count("running it once more")

        print("\nswitchover under load (4 clients, multi-host URL, DB_POOL_SIZE=4):")
        for figures in rounds:
            print("  ", figures)
        print(
            f"   committed writes lost: {len(lost)}; duplicated writes: {duplicated}; "
            f"503s whose write had committed (in doubt): {len(in_doubt)}; statuses reading a 201 back: {read_statuses}"
        )
        print(f"   requests that met a lost connection and ran once more: {run_again}")
        for line in failover_lines:
            print("   log:", line)

        assert lost == []
        assert duplicated == 0
        assert set(read_statuses) <= {200, 503}  # never 404: a 201's company is always there
        assert len(failover_lines) == 2  # one line per switchover, naming both servers
        for line, figures in zip(failover_lines, rounds, strict=True):
            old_address, new_address = figures["switchover"].split(" -> ")
            assert f"from {old_address} to {new_address}" in line
        for figures in rounds:  # within seconds, with no restart (the figure itself is printed)
            assert figures["promotion to first write (s)"] < 15
        series = metrics(server.url)
        assert series['arv_db_role{database="default",role="primary"}'] == 1
        assert series['arv_db_failovers_total{database="default"}'] == 2
        assert series['arv_db_pool_ready_connections{database="default"}'] >= 4


def test_ready_only_with_the_pool_open_on_a_writable_primary(start_server):
    with ReplicatedCluster(standbys=1) as cluster:
        token = migrated_database(cluster, "arv_ready")
        # The pool's four connections open in four slots spread over 8 s: the first answers come
        # before the last one is open.
        server = start_server(
            database_url=cluster.multi_host_url("arv_ready"),
            ARV_METRICS_TOKEN=METRICS_TOKEN,
            **{**SERVER_ENV, "DB_WARMUP_SECONDS": "8"},
        )
        starting = ready(server.url)
        assert starting.status_code == 503 and starting.headers["Retry-After"]
        assert starting.json()["status"] == "unavailable"
        assert httpx.get(f"{server.url}/api/health").status_code == 200  # alive all along

        wait_until_ready(server.url)
        assert ready(server.url).json() == {"status": "ready", "database": "ok", "connections": 4, "pool_size": 4}
        assert arv_sessions(cluster.primary) >= 4 and arv_sessions(cluster.standbys[0]) == 0

        cluster.primary.stop()  # no primary: nothing accepts writes, nobody has asked yet
        wait_for(lambda: ready(server.url).status_code == 503, "ARV to stop being ready", 10)
        assert ready(server.url).headers["Retry-After"]
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        refused = client.post("/api/companies", json={"name": "While no primary"})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert metrics(server.url)['arv_db_role{database="default",role="none"}'] == 1

        cluster.standbys[0].promote()
        wait_until_ready(server.url)
        assert client.post("/api/companies", json={"name": "After promotion"}).status_code == 201
        assert metrics(server.url)['arv_db_role{database="default",role="primary"}'] == 1


def test_a_fenced_primary_is_503_never_500_and_writes_resume_when_unfenced(start_server):
    """default_transaction_read_only set on the server (how an operator fences a primary): the
    health check's role check replaces the connections, the writes are 503 with Retry-After."""
    with ReplicatedCluster(standbys=0) as cluster:
        token = migrated_database(cluster, "arv_fenced")
        server = start_server(database_url=cluster.multi_host_url("arv_fenced"), **SERVER_ENV)
        wait_until_ready(server.url)
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert client.post("/api/companies", json={"name": "Before fencing"}).status_code == 201

        cluster.primary.query("ALTER SYSTEM SET default_transaction_read_only = on")
        cluster.primary.query("SELECT pg_reload_conf()")
        # The backends take the reload in their own time: once ARV's keeper has seen the fence on
        # one of its connections (not ready), every write must be refused.
        wait_for(lambda: ready(server.url).status_code == 503, "ARV to stop being ready", 10)
        statuses = [client.post("/api/companies", json={"name": f"Fenced {i}"}) for i in range(5)]
        assert [r.status_code for r in statuses] == [503] * 5
        assert all(r.headers["Retry-After"] for r in statuses)
        assert (
            cluster.primary.query(
                "SELECT count(*) FROM companies_company WHERE name LIKE 'Fenced%%'", dbname="arv_fenced"
            )[0][0]
            == 0
        )

        cluster.primary.query("ALTER SYSTEM RESET default_transaction_read_only")
        cluster.primary.query("SELECT pg_reload_conf()")
        wait_until_ready(server.url)
        assert client.post("/api/companies", json={"name": "After fencing"}).status_code == 201


def test_a_write_refused_as_read_only_replaces_the_connection_and_runs_once_more(start_server, observer):
    """25006 on a connection: it is closed (never reused) and the request runs again in a fresh
    unit, where it succeeds: one 201, one row."""
    from companies.models import Company

    server = start_server(DJANGO_SETTINGS_MODULE="testing.settings")
    answer = httpx.get(f"{server.url}/site-test/read-only-once", params={"name": "Once"}, timeout=30)
    assert answer.status_code == 201
    first_pid, second_pid = answer.json()["pids"]  # two runs, the first refused
    assert first_pid != second_pid
    assert first_pid not in [pid for pid, _ in observer.backends()]  # closed, not back in the pool
    assert Company.objects.filter(name="Once").count() == 1


def test_a_connection_lost_during_the_commit_is_503_and_never_run_again(start_server, transactional_db):
    """The outcome of a commit whose connection was lost is unknown: running the request again
    could apply it twice, so it is answered 503 with Retry-After, after one run."""
    from companies.models import Company

    server = start_server(DJANGO_SETTINGS_MODULE="testing.settings")
    answer = httpx.get(
        f"{server.url}/site-test/lost-at-commit", params={"name": "In doubt"}, headers={"X-Request-ID": "in-doubt-1"}
    )
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert httpx.get(f"{server.url}/site-test/runs-of", params={"id": "in-doubt-1"}).json() == {"runs": 1}
    assert not Company.objects.filter(name="In doubt").exists()  # this time the commit never happened

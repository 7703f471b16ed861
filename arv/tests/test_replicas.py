"""Read replicas on real servers (issue 19, item 3): a primary and a streaming standby
(testing.clusters), ARV under uvicorn with DATABASE_URL = the primary and
DATABASE_REPLICA_URLS = the standby. Run with -s to see the figures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testing.admin import ADMIN_PASSWORD, ADMIN_USERNAME, log_in
from testing.clusters import ReplicatedCluster, wait_for
from testing.servers import PROJECT_DIR, UvicornProcess

pytestmark = pytest.mark.slow

METRICS_TOKEN = "replica-metrics-token"
HEADER = "ARV-Read-After"
CLIENTS = 4


def manage(database_url: str, *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


class ReplicatedArv:
    """A migrated database on a replicated cluster, a staff token, and ARV servers on it."""

    def __init__(self, cluster: ReplicatedCluster, start_server: Callable[..., UvicornProcess]) -> None:
        self.cluster, self._start_server = cluster, start_server
        self.standby = cluster.standbys[0]
        cluster.create_database("arv")
        self.primary_url, self.standby_url = cluster.primary.url("arv"), self.standby.url("arv")
        manage(self.primary_url, "migrate", "--noinput")
        self.token = manage(self.primary_url, "create_api_token", "ops", "--staff").strip().splitlines()[-1]
        cluster.wait_for_replay()

    def start(self, **env: str) -> UvicornProcess:
        """ARV reading from the standby; returned once its monitor has taken the replica in use."""
        server = self._start_server(
            database_url=self.primary_url,
            DATABASE_REPLICA_URLS=self.standby_url,
            ARV_METRICS_TOKEN=METRICS_TOKEN,
            **env,
        )
        wait_for(lambda: "replica replica_1" in server.output() and " in use" in server.output(), "the replica in use")
        return server

    def client(self, server: UvicornProcess) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def standby_commits(self) -> int:
        """Transactions committed on the standby's database (its own statistics)."""
        self.standby.query("SELECT pg_stat_clear_snapshot()")
        return self.standby.query("SELECT xact_commit FROM pg_stat_database WHERE datname = 'arv'")[0][0]


@pytest.fixture
def arv(replicated_cluster, start_server) -> ReplicatedArv:
    return ReplicatedArv(replicated_cluster, start_server)


def create_superuser(arv: ReplicatedArv) -> None:
    manage(
        arv.primary_url,
        "createsuperuser",
        "--noinput",
        "--username",
        ADMIN_USERNAME,
        "--email",
        "boss@example.com",
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
    )


def scrape(server: UvicornProcess) -> list:
    """Every sample of the server's /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def metric(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def units_by_database(server: UvicornProcess) -> dict[str, float]:
    """arv_db_units_total per database, from the server's /metrics."""
    units: Counter[str] = Counter()
    for sample in scrape(server):
        if sample.name == "arv_db_units_total":
            units[sample.labels["database"]] += sample.value
    return dict(units)


def write_then_read(client: httpx.Client, name: str, send_back: bool = True) -> str | None:
    """Create a company, then read it back sending the position given: None if the read saw
    the write, else what it saw instead."""
    created = client.post("/api/companies", json={"name": name})
    assert created.status_code == 201, created.text
    position = created.headers.get(HEADER)
    assert position and re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", position), created.headers
    headers = {HEADER: position} if send_back else {}
    read = client.get(f"/api/companies/{created.json()['id']}", headers=headers)
    if read.status_code == 200 and read.json()["name"] == name:
        return None
    return f"{read.status_code} {read.text[:100]}"


def in_threads(count: int, work: Callable[[int], object]) -> list:
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(work, range(count)))


def test_a_client_that_sends_its_position_back_never_reads_before_its_write(arv):
    # Replay paused: the standby shows nothing written from now on, and is not skipped for
    # lag (DB_REPLICA_MAX_LAG is large): only the positions keep the writers' reads fresh.
    server = arv.start(DB_REPLICA_MAX_LAG="3600")
    arv.standby.pause_replay()
    clients = [arv.client(server) for _ in range(CLIENTS)]
    local = threading.local()

    def pair(i: int) -> str | None:
        if not hasattr(local, "client"):
            local.client = clients[i % CLIENTS]
        return write_then_read(local.client, f"Read Your Writes {i}")

    before = units_by_database(server)
    stale = [outcome for outcome in in_threads(1000, pair) if outcome is not None]
    after = units_by_database(server)
    # The control: a reader that does not send the position back reads the paused standby.
    control = write_then_read(clients[0], "Not Sent Back", send_back=False)
    print(
        f"\nread-your-writes, replay paused: 1000 write-then-read pairs, {len(stale)} stale reads; "
        f"units on the primary {after.get('default', 0) - before.get('default', 0):.0f}, on the replica "
        f"{after.get('replica_1', 0) - before.get('replica_1', 0):.0f} (each behind read checked there, then "
        f"run on the primary); a reader that does not send it back: {control}"
    )
    assert stale == []
    assert control is not None and control.startswith("404")


def read_your_writes(server, client, prefix: str, pairs: int = 200) -> tuple[list[str], float, float]:
    """`pairs` write-then-read pairs in threads: (the stale reads, the reads begun on the replica,
    how many of those found it behind and ran again on the primary)."""
    before = units_by_database(server)
    stale = [outcome for outcome in in_threads(pairs, lambda i: write_then_read(client, f"{prefix} {i}")) if outcome]
    after = units_by_database(server)
    began_on_replica = after.get("replica_1", 0) - before.get("replica_1", 0)
    rerun = after.get("default", 0) - before.get("default", 0) - pairs  # the writes ran on the primary
    return stale, began_on_replica, rerun


def test_with_a_delayed_replica_reads_wait_for_it_or_go_to_the_primary(arv):
    # Replay delayed by 200 ms: a read sent right after its write finds the replica behind.
    server = arv.start(DB_REPLICA_MAX_LAG="3600", DB_REPLICA_WAIT_MS="50")
    arv.standby.set_apply_delay(200)
    stale, began_on_replica, rerun = read_your_writes(server, arv.client(server), "Delayed")
    print(
        f"\nread-your-writes, replay delayed 200 ms, DB_REPLICA_WAIT_MS=50: 200 pairs, {len(stale)} stale reads; "
        f"reads begun on the replica {began_on_replica:.0f}, of which {rerun:.0f} found it behind and read the primary"
    )
    assert stale == []


def test_a_browser_session_reads_its_writes_through_the_signed_cookie(arv):
    create_superuser(arv)
    server = arv.start(DB_REPLICA_MAX_LAG="3600")
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        log_in(browser)
        assert "arv_read_after" in browser.cookies  # the login wrote (its session)
        arv.cluster.wait_for_replay()  # the session is on the standby too; from now on nothing more
        arv.standby.pause_replay()
        stale = []
        for i in range(5):
            headers = {"X-CSRFToken": browser.cookies["csrftoken"], "Referer": server.url + "/admin/"}
            created = browser.post("/api/companies", json={"name": f"Browser {i}"}, headers=headers)
            assert created.status_code == 201, created.text
            read = browser.get(f"/api/companies/{created.json()['id']}")  # the cookie only, no header
            if read.status_code != 200:
                stale.append(read.status_code)
        # Without the cookie, the same session reads the paused standby.
        cookie = browser.cookies["arv_read_after"]
        browser.cookies.delete("arv_read_after")
        missing = browser.get(f"/api/companies/{created.json()['id']}").status_code
        browser.cookies.set("arv_read_after", cookie)
    print(f"\nbrowser session, replay paused: 5 pairs through the signed cookie, {len(stale)} stale reads")
    assert stale == []
    assert missing == 404


def test_most_reads_are_served_by_the_replica(arv):
    server = arv.start()
    client = arv.client(server)
    ids = [client.post("/api/companies", json={"name": f"Listed {i}"}).json()["id"] for i in range(20)]
    arv.cluster.wait_for_replay()
    paths = ["/api/companies"] + [f"/api/companies/{i}" for i in ids]
    before, commits_before = units_by_database(server), arv.standby_commits()
    statuses = Counter(in_threads(600, lambda i: client.get(paths[i % len(paths)]).status_code))
    after = units_by_database(server)
    on_replica = after.get("replica_1", 0) - before.get("replica_1", 0)
    on_primary = after.get("default", 0) - before.get("default", 0)
    share = on_replica / (on_replica + on_primary)
    # A backend that goes idle may hold its statistics back for up to 10 s (PostgreSQL 15's
    # PGSTAT_IDLE_INTERVAL): wait for the standby's count to catch up, then compare.
    try:
        wait_for(lambda: arv.standby_commits() - commits_before >= on_replica, "the standby's statistics", 15)
    except TimeoutError:
        pass  # the assertion below says by how much
    commits_after = arv.standby_commits()
    print(
        f"\nreplay running: 600 reads ({dict(statuses)}), {on_replica:.0f} units on the replica, {on_primary:.0f} "
        f"on the primary: {share:.0%} on the replica; the standby committed {commits_after - commits_before} "
        "transactions meanwhile (the reads and the monitor's checks)"
    )
    assert statuses == {200: 600}
    assert share >= 0.7
    assert commits_after - commits_before >= on_replica  # the standby did serve them


def test_metrics_and_dbstatus_show_each_database(arv):
    server = arv.start()
    assert arv.client(server).get("/api/companies").status_code == 200
    samples = scrape(server)
    assert metric(samples, "arv_db_role", database="default", role="primary") == 1
    assert metric(samples, "arv_db_role", database="replica_1", role="standby") == 1
    assert metric(samples, "arv_db_role", database="replica_1", role="skipped") == 0
    assert 0 <= metric(samples, "arv_db_replica_lag_seconds", database="replica_1") < 5
    for database in ("default", "replica_1"):
        assert metric(samples, "arv_db_pool_bound", database=database) == 6  # testing.env: 4 + 2 each
        assert metric(samples, "arv_db_pool_workers", database=database) >= 1

    status = json.loads(manage(arv.primary_url, "dbstatus", "--json", DATABASE_REPLICA_URLS=arv.standby_url))
    assert status["databases"] == ["default", "replica_1"]
    replica = status["replicas"]["replica_1"]
    assert replica["reachable"] and replica["in_recovery"] is True and replica["connections"] >= 1
    text = manage(arv.primary_url, "dbstatus", DATABASE_REPLICA_URLS=arv.standby_url)
    assert "replica replica_1: standby, replayed to " in text


def test_no_read_fails_when_the_replica_stops_mid_load(arv):
    """The API's reads and the admin's pages (a sync request, its view's failure noted by the
    site's handler, arv.pipeline) alike: one whose replica connection is lost runs once more."""
    create_superuser(arv)
    server = arv.start(DB_CONNECT_TIMEOUT="2")
    client = arv.client(server)
    ids = [client.post("/api/companies", json={"name": f"Kept {i}"}).json()["id"] for i in range(10)]
    browser = httpx.Client(base_url=server.url, timeout=30)
    log_in(browser)
    arv.cluster.wait_for_replay()
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    admin_statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def read_until_stopped(n: int) -> None:
        with arv.client(server) as own:
            i = 0
            while not stop.is_set():
                status = own.get(f"/api/companies/{ids[(n + i) % len(ids)]}").status_code
                with lock:
                    statuses[status] += 1
                i += 1

    def read_the_admin_until_stopped() -> None:
        while not stop.is_set():
            status = browser.get("/admin/companies/company/", params={"q": "Kept"}).status_code
            with lock:
                admin_statuses[status] += 1

    before = units_by_database(server)
    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        for n in range(CLIENTS):
            pool.submit(read_until_stopped, n)
        admin = pool.submit(read_the_admin_until_stopped)
        time.sleep(2)
        arv.standby.stop()  # fast: its sessions end mid-load
        time.sleep(4)
        stop.set()
    admin.result()
    browser.close()
    during = units_by_database(server)
    arv.standby.start()
    wait_for(lambda: "back in use" in server.output(), "the replica back in use")
    after_restart = client.get(f"/api/companies/{ids[0]}").status_code
    log = server.output()
    skipped = [line for line in log.splitlines() if "replica replica_1" in line and "skipped" in line]
    back = [line for line in log.splitlines() if "replica replica_1" in line and "back in use" in line]
    print(
        f"\nreplica stopped mid-load: {sum(statuses.values())} reads, answers {dict(statuses)}; admin pages "
        f"{dict(admin_statuses)}; units on the replica {during.get('replica_1', 0) - before.get('replica_1', 0):.0f}, "
        f"on the primary {during.get('default', 0) - before.get('default', 0):.0f}; log: {skipped + back}"
    )
    assert set(statuses) == {200}
    assert set(admin_statuses) == {200}
    assert len(skipped) == 1 and len(back) == 1
    assert after_restart == 200


def test_a_replica_lagging_too_far_is_skipped_and_its_return_logged_once(arv):
    server = arv.start(DB_REPLICA_MAX_LAG="1")
    client = arv.client(server)
    arv.standby.set_apply_delay(4000)

    def skipped_while_writing() -> bool:
        assert client.post("/api/companies", json={"name": f"Delayed {time.monotonic()}"}).status_code == 201
        return "skipped" in server.output()

    wait_for(skipped_while_writing, "the replica skipped", timeout=30)
    # Writes keep coming while it is skipped; every read is answered (from the primary).
    reads = Counter()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        reads[write_then_read(client, f"Lagging {len(reads)}{time.monotonic()}", send_back=False)] += 1
    arv.standby.set_apply_delay(0)
    wait_for(lambda: "back in use" in server.output(), "the replica back in use", timeout=30)
    time.sleep(2)  # no second line while it stays in use
    lines = [line for line in server.output().splitlines() if "replica replica_1" in line]
    skipped = [line for line in lines if "skipped" in line]
    back = [line for line in lines if "back in use" in line]
    print(f"\nlag over DB_REPLICA_MAX_LAG=1: reads while skipped {dict(reads)}; log: {skipped + back}")
    assert len(skipped) == 1 and "over DB_REPLICA_MAX_LAG" in skipped[0]
    assert len(back) == 1
    assert set(reads) == {None}  # skipped: reads went to the primary and saw every write


def test_a_get_that_writes_or_insists_on_the_primary_runs_there_and_its_route_starts_there_next(arv):
    server = arv.start(DJANGO_SETTINGS_MODULE="testing.settings")
    assert httpx.get(f"{server.url}/api/test/read-where").json() == {"in_recovery": True}  # a plain read

    before = units_by_database(server)
    insisted = [httpx.get(f"{server.url}/api/test/read-on-primary").json() for _ in range(2)]
    middle = units_by_database(server)
    wrote = [httpx.get(f"{server.url}/api/test/async-orm", params={"name": f"Get{i}"}) for i in range(2)]
    after = units_by_database(server)

    assert insisted == [{"in_recovery": False}] * 2
    assert middle.get("replica_1", 0) == before.get("replica_1", 0)  # refused before it leased a worker
    assert [answer.status_code for answer in wrote] == [201, 201]
    assert all(HEADER in answer.headers for answer in wrote)  # they wrote: the position comes back
    # The first write began on the replica (and ran again on the primary), the second began on the primary.
    assert after.get("replica_1", 0) - middle.get("replica_1", 0) == 1
    learned = [line for line in server.output().splitlines() if "reads from the primary from now on" in line]
    assert len(learned) == 2, learned


def test_a_position_that_is_not_one_is_a_clear_400(arv):
    server = arv.start()
    answer = arv.client(server).get("/api/companies", headers={HEADER: "not-a-position"})
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": "ARV-Read-After must be a WAL position such as 0/16B3748, as an earlier answer gave it"
    }


@pytest.mark.parametrize("wait_ms", ["0", "20"])
def test_with_replay_running_a_writer_reads_from_the_replica_once_it_has_replayed(arv, wait_ms):
    server = arv.start(DB_REPLICA_WAIT_MS=wait_ms)
    stale, began_on_replica, rerun = read_your_writes(server, arv.client(server), "Running")
    print(
        f"\nreplay running, DB_REPLICA_WAIT_MS={wait_ms}: 200 write-then-read pairs, {len(stale)} stale; reads "
        f"served by the replica {began_on_replica - rerun:.0f}, by the primary {rerun:.0f} (the replica had not "
        "replayed the write yet)"
    )
    assert stale == []

"""ARV benchmark: one command brings everything up, loads it with wrk, and writes a report.

    bench/run --peer-dir ../shared/peer_fastapi   # the full sitting (~25-30 min on 2 cores): ARV, the
                                                  # FastAPI peer, the textbook Django contenders and the
                                                  # diagnostic ones (ARV's queries); 1 and 2 processes
    bench/run --quick              # ~5 min: 1 process, 1 repetition
    bench/run --sizes 10000,1000000 --conns 16    # the reads at each data size (~10-15 min, seeding included)
    bench/run --peer http://127.0.0.1:8001 --peer-token T   # a peer that is already running (1 process)
    bench/run --contenders none    # without the Django contenders (bench/contenders/)
    bench/run --contenders textbook-sync,textbook-async   # the textbook ones only (no diagnostic rows)
    bench/run --baseline-dir PATH  # also measure another clone of ARV (e.g. the last commit), before/after
    bench/run --arv-env DB_RUNNING_JOBS=0       # ARV's servers with another setting
    bench/run --baseline-dir PATH --arv-env ARV_METRICS_TOKEN=t --baseline-env ARV_METRICS_TOKEN=
                                   # one setting's cost: the same code with and without it (metrics)
    bench/run --quick --scenarios admin,admin_search --skip-ceilings --profile-seconds 0 --conns 16,32
    bench/run --render bench/results/<timestamp>.json       # re-render a saved run's .md and .png

What it does, on the local PostgreSQL (postgres@127.0.0.1:5432, or --pg-host/--pg-port):
  1. drops and creates the database arv_bench, runs `manage.py migrate`, seeds 10,000 companies
     with 2 folders each (COPY) and a superuser (bench/seed.py), creates a staff API token, VACUUM
     ANALYZE (autovacuum is off here: unanalysed tables have no statistics), and, for the admin
     scenarios, collects the static files into /tmp (the admin's templates need the manifest with
     DEBUG off; the checkout's own staticfiles/ is left alone). With --peer-dir, the peer's own
     database is seeded by its seed.py and analysed the same way;
  2. for each process count, starts each contender in turn, each on a fresh clone of its seeded
     database (CREATE DATABASE ... TEMPLATE: the same rows, indexes and statistics, none of another
     contender's creates): `uvicorn arv.asgi:application --workers N`, the peer, the textbook Django
     contenders (textbook-sync: django-ninja sync operations under gunicorn gthread; textbook-async:
     async operations on Django's async ORM and pool under uvicorn) and the diagnostic ones, ARV's
     own selectors and services on those two servers (sync, async). Each runs its scenarios (ARV:
     detail, list, search, create, mix, admin if asked for; the others detail, list, search,
     create) at each concurrency with wrk (bench/lua/scenario.lua): a warm-up, then a measured run.
     This goes in --reps rounds (default 3): each round starts every server anew and gives each of
     its cells one run, and the median of a cell's runs is reported, so each contender's median
     spans the same stretches of the sitting and the shared machine's drift reaches all alike (a
     cell's runs one after the other would all land in one stretch). Before the admin scenarios
     it logs in over HTTP as a browser would (login form, CSRF token, session cookie), and wrk
     sends that session's cookie; their runs are longer (MIN_REQUESTS_PER_CONNECTION);
  3. measures the ceilings in the same run: a bare ASGI app (bench/bare_asgi.py), ARV's own stack
     with a view that touches no database (bench/arv_nodb.py), and the detail endpoint's SQL
     straight through psycopg (bench/dbceiling.py); and a py-spy profile of ARV's endpoints
     (--profile-scenarios, default detail,list,search,create);
  4. optionally a baseline: another clone of this repository (--baseline-dir, with its own .venv
     from its bin/setup). Each scenario then runs on a fresh server of the baseline and then of
     this checkout, one server at a time, so each one's backends and sessions are its own;
  5. writes bench/results/<timestamp>.md, .json and .png and prints the tables: every row, ARV
     side by side with each alternative (req/s and ratios, p99, backends, sessions) and a line
     against the issue's targets.
--sizes replaces 2-4: one database per size, ARV at the first process count, the reads detail,
list, search, admin and admin_search, list and admin pages among the first SIZES_PAGES; the report
compares p50 across sizes.

While a scenario runs, a monitor thread polls pg_stat_activity (backends of the database under
test) and the server's RSS (the server process and its children) every 100 ms;
pg_stat_database.sessions before and after gives the new database sessions per 1,000 requests.
Per request means per request served: wrk's completed ones and those still in flight when it
stopped, which the server finishes before the next run (their sessions and CPU time are counted
too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "lua" / "scenario.lua"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
UVICORN = str(VENV_BIN / "uvicorn")
ARV_LOOP = "arv.event_loop:EventLoop"  # uvicorn's --loop for ARV's servers (its README's)
GUNICORN = str(VENV_BIN / "gunicorn")

ARV_SCENARIOS = ["detail", "list", "search", "create", "mix", "admin", "admin_search"]
# admin only when asked for: its runs are long (below), and would take the full run past 10 minutes.
DEFAULT_SCENARIOS = ["detail", "list", "search", "create", "mix"]
PEER_SCENARIOS = ["detail", "list", "search", "create"]
# The Django deployments beside ARV (bench/contenders/): target -> label. The textbook ones are what
# a Django user who does not pick ARV writes (their own querysets); "sync" and "async" run ARV's own
# selectors, services and token check on the same two servers: a diagnostic that isolates the
# serving stack, shown beside the others but not counted in "best".
CONTENDERS = {
    "textbook-sync": "textbook sync",
    "textbook-async": "textbook async",
    "sync": "ARV's queries, sync server",
    "async": "ARV's queries, async server",
}
DIAGNOSTIC = ["sync", "async"]
CONTENDER_SCENARIOS = ["detail", "list", "search", "create"]
ALTERNATIVES = ["peer", "textbook-sync", "textbook-async"]  # what ARV is compared with: "best" is the fastest
BESIDE = [*ALTERNATIVES, *DIAGNOSTIC]  # every contender shown side by side
# Threads of a gunicorn gthread worker, and the max_size of Django's pool per process: one ARV
# process's bound (DB_POOL_SIZE 20 + DB_MAX_OVERFLOW 10), so each holds as many connections.
CONTENDER_CONNECTIONS = 30
# A run's edges cut about one request per connection (they all start together; the last ones are
# still in flight when wrk stops). An admin page costs ~100 ms of CPU, so a 2-3 s run would complete
# only a few per connection: its runs last until about this many per connection have completed (as
# the warm-up's rate predicts), at least --duration and at most MAX_RUN_SECONDS.
MIN_REQUESTS_PER_CONNECTION = {"admin": 10, "admin_search": 10}
# --sizes: the reads whose cost must not grow with the data, each at every size; list and admin
# pages among the first SIZES_PAGES only (a person pages from the front; page 50,000 is a search).
SIZES_SCENARIOS = ["detail", "list", "search", "admin", "admin_search"]
SIZES_PAGES = 100
MAX_RUN_SECONDS = 30
ADMIN_USERNAME, ADMIN_PASSWORD = "bench-admin", "bench-admin-password"
ADMIN_CHANGELIST = "/admin/companies/company/"
DB_POOL_MAX = 30  # DB_POOL_SIZE + DB_MAX_OVERFLOW defaults: what one ARV process may hold
SCENARIO_TEXT = {
    "detail": "GET /api/companies/{random seeded id}",
    "list": "GET /api/companies?page_size=20&page={random}",
    "search": "GET /api/companies?page_size=20&search={random number}",
    "create": "POST /api/companies (unique name)",
    "mix": "60% detail, 30% list, 10% create",
    "admin": "GET /admin/companies/company/?p={random} (admin changelist, 100 rows a page) with a logged-in "
    "superuser's session cookie; 3xx answers count as errors",
    "admin_search": "GET /admin/companies/company/?q={random number} (the admin changelist's search), logged in",
    "http": "bare ASGI app under uvicorn (small JSON)",
    "nodb": "ARV stack, ninja view without database (GET /api/bench/ping)",
    "db": "detail endpoint's SQL via psycopg (ping + BEGIN + 2 queries + COMMIT)",
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------- PostgreSQL


class Postgres:
    def __init__(self, host: str, port: int, user: str) -> None:
        self.host, self.port, self.user = host, port, user

    def url(self, database: str, scheme: str = "postgres") -> str:
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname=database, autocommit=True)

    def settle(self, database: str) -> None:
        """After seeding: vacuum and analyze now, and write the dirty pages out, so neither
        autovacuum nor a checkpoint lands in (and skews) whichever measurement runs first."""
        with self.connect(database) as conn:
            conn.execute("VACUUM ANALYZE")
            try:
                conn.execute("CHECKPOINT")
            except psycopg.errors.InsufficientPrivilege:
                pass

    def recreate(self, database: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')

    def clone(self, template: str, database: str) -> None:
        """A fresh copy of a seeded, analysed database (rows, indexes, statistics, visibility map):
        every server starts on the same data, whatever an earlier one created."""
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')

    def sessions(self, database: str) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,)).fetchone()
        return int(row[0]) if row else 0

    def backends(self, database: str) -> int:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                (database,),
            ).fetchone()
        return int(row[0])

    def version(self) -> str:
        with self.connect() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLOCK_TICKS


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


class Server:
    """A uvicorn process we started (in its own session), with a readiness URL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, ready_path: str, port: int):
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.ready_path, self.port = ready_path, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = Path("/tmp") / f"arv-bench-{name}-{port}.log"

    def start(self, workers: int, timeout: float = 60.0) -> None:
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited at start; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(self.base_url + self.ready_path, timeout=2) as response:
                    if response.status == 200 and len(process_tree(self.proc.pid)) >= (
                        1 if workers == 1 else workers + 1
                    ):
                        time.sleep(0.5 if workers == 1 else 1.5)  # let every worker finish its start-up
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f}s; see {self.log_path}")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group we created at start
                self.proc.wait(5)
        self.log_file.close()
        self.proc = None


@dataclass(frozen=True)
class Checkout:
    """A clone of the repository whose ARV the bench starts: this one, or --baseline-dir's."""

    name: str  # rows' label prefix: "ARV", "baseline"
    target: str  # rows' target: "arv", "baseline"
    root: Path
    python: str
    uvicorn: str

    @classmethod
    def at(cls, name: str, target: str, root: Path) -> Checkout:
        return cls(name, target, root, str(root / ".venv" / "bin" / "python"), str(root / ".venv" / "bin" / "uvicorn"))

    @property
    def uvicorn_options(self) -> list[str]:
        """What its README serves it with: the event loop ARV is measured on (arv.event_loop),
        if this checkout has it (a baseline from before runs on uvicorn's default)."""
        return ["--loop", ARV_LOOP] if (self.root / "arv" / "event_loop.py").exists() else []

    @property
    def static_root(self) -> Path:
        # Outside the checkout: the bench writes nothing into a work tree.
        return Path("/tmp") / f"arv-bench-static-{self.target}"

    def git(self) -> str:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=self.root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=self.root, capture_output=True, text=True)
        return commit.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def admin_login(base_url: str, username: str, password: str) -> str:
    """Log in to the admin as a browser would; returns the Cookie header wrk sends.

    GET the login form (csrftoken cookie, csrfmiddlewaretoken field), POST it back with the
    Referer a browser sends, keep the sessionid cookie. Then check that the changelist answers
    200 itself: a redirect would mean the session is not accepted.
    """
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{base_url}/admin/login/?next=/admin/"
    with opener.open(login_url, timeout=10) as response:
        form = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    if not match:
        raise RuntimeError(f"no csrfmiddlewaretoken in {login_url}")
    fields = {"username": username, "password": password, "csrfmiddlewaretoken": match[1], "next": "/admin/"}
    request = urllib.request.Request(
        login_url, data=urllib.parse.urlencode(fields).encode(), headers={"Referer": login_url}
    )
    with opener.open(request, timeout=30) as response:  # 302 to /admin/, followed
        response.read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "sessionid" not in cookies:
        raise RuntimeError(f"admin login as {username} failed: no sessionid cookie")
    header = f"sessionid={cookies['sessionid']}; csrftoken={cookies.get('csrftoken', '')}"
    check = urllib.request.Request(base_url + ADMIN_CHANGELIST, headers={"Cookie": header})
    with urllib.request.urlopen(check, timeout=30) as response:
        page = response.read().decode()
        if response.geturl() != base_url + ADMIN_CHANGELIST or 'id="result_list"' not in page:
            raise RuntimeError(f"{ADMIN_CHANGELIST} with the session did not answer the changelist")
    return header


# ----------------------------------------------------------------------------- monitor


class Monitor(threading.Thread):
    """Polls backends of one database and the RSS of one server every 100 ms."""

    def __init__(self, pg: Postgres) -> None:
        super().__init__(daemon=True, name="bench-monitor")
        self.pg = pg
        self.lock = threading.Lock()
        self.database: str | None = None
        self.server: Server | None = None
        self.peak_backends = 0
        self.peak_rss_kb = 0
        self.backends = 0
        self.rss = 0
        self._pids: list[int] = []
        self._pids_at = 0.0
        self._stop = threading.Event()

    def watch(self, database: str | None, server: Server | None) -> None:
        with self.lock:
            self.database, self.server = database, server
            self._pids, self._pids_at = [], 0.0
            self.backends = self.rss = 0
            self.reset()

    def reset(self) -> None:
        self.peak_backends = self.peak_rss_kb = 0

    def snapshot(self) -> dict[str, int]:
        self._sample(force=True)
        with self.lock:
            return {
                "peak_backends": self.peak_backends,
                "backends": self.backends,
                "peak_rss_kb": self.peak_rss_kb,
                "rss_kb": self.rss,
            }

    def run(self) -> None:
        self.conn = self.pg.connect()
        while not self._stop.wait(0.1):
            try:
                self._sample()
            except Exception as exc:  # noqa: BLE001 - keep polling
                log(f"monitor: {exc!r}")
                time.sleep(1)
                self.conn = self.pg.connect()

    def _sample(self, force: bool = False) -> None:
        with self.lock:
            database, server = self.database, self.server
            if database is not None:
                conn = self.conn if not force else None
                if conn is None:
                    backends = self.pg.backends(database)
                else:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                        (database,),
                    ).fetchone()
                    backends = int(row[0])
                self.backends = backends
                self.peak_backends = max(self.peak_backends, backends)
            if server is not None:
                now = time.monotonic()
                if now - self._pids_at > 1.0:
                    self._pids, self._pids_at = server.pids(), now
                self.rss = rss_kb(self._pids)
                self.peak_rss_kb = max(self.peak_rss_kb, self.rss)

    def stop(self) -> None:
        self._stop.set()


# ----------------------------------------------------------------------------- load


def p99_counting_unanswered_us(rep: dict[str, Any], connections: int) -> float:
    """wrk's p99, or more where the requests still unanswered when wrk stopped prove it higher.

    wrk's percentiles count only the requests answered within the run. In its closed loop each
    connection always has one request out, so when it stops `connections` requests are unanswered,
    and their waits so far add up to connections x duration - the answered ones' latencies
    (Little's law; a server that keeps some clients waiting for the whole run has these long).
    Each is at most the run's length, so the k-th longest of them is at least
    (total - (k - 1) x duration) / (connections - k + 1); with k the top 1 % of all requests sent,
    that is a lower bound on the true p99 (the peer's detail at 128 connections: 2 s runs, wrk's
    p99 168 ms and this bound 1,503; 10 s runs: p99 1,744). Without such requests it is wrk's p99."""
    p99 = rep["latency_us"]["p99"]
    answered, run_us = rep["requests"], rep["duration_us"]
    top = max(1, (answered + connections) // 100)
    if top > connections:  # the top 1 % is not all unanswered: no bound from them alone
        return p99
    waited_us = connections * run_us - answered * rep["latency_us"]["mean"]
    return max(p99, (waited_us - (top - 1) * run_us) / (connections - top + 1))


@dataclass
class Cell:
    target: str  # arv, baseline, peer, http, nodb, db
    label: str  # "ARV 1w", "baseline 1w", "peer 1w", "HTTP ceiling 1w", ...
    workers: int
    scenario: str
    connections: int
    reps: list[dict[str, Any]] = field(default_factory=list)
    new_sessions: int = 0  # over all its measured runs (pg_stat_database.sessions after - before)
    monitor: dict[str, int] = field(default_factory=dict)
    db_connections: int | None = None
    companies: int | None = None  # --sizes: the data size this cell ran on
    server_cpu_s: float | None = None
    duration_s: int | None = None

    def rps(self) -> list[float]:
        return [r["requests"] / (r["duration_us"] / 1e6) for r in self.reps]

    def summary(self) -> dict[str, Any]:
        requests = sum(r["requests"] for r in self.reps)
        # Served: also those in flight when wrk stopped, which the server finished (drain) and whose
        # sessions and CPU are counted. wrk's count alone would overstate both per request.
        served = sum(r.get("sent", r["requests"]) for r in self.reps)
        errors = sum(sum(r["errors"].values()) for r in self.reps)
        rps = self.rps()
        new_sessions = self.new_sessions
        return {
            "target": self.target,
            "label": self.label,
            "workers": self.workers,
            "scenario": self.scenario,
            "connections": self.connections,
            "db_connections": self.db_connections,
            "companies": self.companies,
            "rps": round(statistics.median(rps), 1) if rps else 0.0,
            "rps_reps": [round(x, 1) for x in rps],
            "p50_ms": round(statistics.median(r["latency_us"]["p50"] for r in self.reps) / 1000, 2) if rps else None,
            "p99_ms": round(statistics.median(r["latency_us"]["p99"] for r in self.reps) / 1000, 2) if rps else None,
            "p99_unanswered_ms": round(
                statistics.median(p99_counting_unanswered_us(r, self.connections) for r in self.reps) / 1000, 2
            )
            if rps
            else None,
            "duration_s": self.duration_s,
            "requests": requests,
            "served": served,
            "errors": errors,
            "errors_detail": {
                k: sum(r["errors"].get(k, 0) for r in self.reps)
                for k in ("status", "redirect", "connect", "read", "write", "timeout")
            },
            "peak_backends": self.monitor.get("peak_backends"),
            "final_backends": self.monitor.get("backends"),
            "new_sessions": new_sessions,
            "sessions_per_1k": round(new_sessions * 1000 / served, 2) if served else None,
            "server_cpu_ms_per_req": round(self.server_cpu_s * 1000 / served, 3)
            if self.server_cpu_s is not None and served
            else None,
            "rss_mb": round(self.monitor.get("rss_kb", 0) / 1024, 1) if self.monitor.get("rss_kb") else None,
            "peak_rss_mb": round(self.monitor.get("peak_rss_kb", 0) / 1024, 1)
            if self.monitor.get("peak_rss_kb")
            else None,
        }


def run_length(scenario: str, connections: int, seconds: int, warm: dict[str, Any]) -> int:
    """Seconds per measured run: `seconds`, or longer for a slow scenario (MIN_REQUESTS_PER_CONNECTION)."""
    per_connection = MIN_REQUESTS_PER_CONNECTION.get(scenario)
    if not per_connection:
        return seconds
    rate = warm["requests"] / (warm["duration_us"] / 1e6)  # the warm-up's ramp makes it low: errs long
    needed = math.ceil(per_connection * connections / rate) if rate else MAX_RUN_SECONDS
    return max(seconds, min(MAX_RUN_SECONDS, needed))


def parse_bench_json(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"no BENCH_JSON in wrk output:\n{output[-2000:]}")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pg = Postgres(args.pg_host, args.pg_port, args.pg_user)
        self.monitor = Monitor(self.pg)
        self.cells: list[Cell] = []
        # The side by side's cells by (label, scenario, connections): measured in rounds (run).
        self.side_by_side_cells: dict[tuple[str, str, int], Cell] = {}
        self.round = self.rounds = 1
        self.tag = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_counter = 0
        self.servers: list[Server] = []
        self.profiles: dict[str, dict[str, Any]] = {}  # scenario -> py-spy summaries
        self.started = time.monotonic()
        self.main = Checkout("ARV", "arv", ROOT, PYTHON, UVICORN)
        # Seeded once (the template), cloned fresh for every server: ARV's and the contenders'.
        self.run_db = f"{args.database}_run"
        self.pages = 0  # list and admin pages among the first N only (0: all); --sizes sets SIZES_PAGES
        self.peer_run_db = f"{args.peer_db}_run"
        base = Path(args.baseline_dir).resolve() if args.baseline_dir else None
        self.baseline = Checkout.at("baseline", "baseline", base) if base else None

    # -- wrk ---------------------------------------------------------------------------------

    def wrk(
        self,
        base_url: str,
        mode: str,
        connections: int,
        seconds: int,
        token: str,
        ids: tuple[int, int],
        path="/",
        cookie="",
    ):
        self.run_counter += 1
        run_tag = f"{self.tag}-{self.run_counter}-{os.getpid()}"
        argv = [
            "wrk",
            f"-t{min(self.args.threads, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            f"{self.args.timeout}s",
            "--latency",
            "-s",
            str(LUA),
            base_url,
            "--",
            mode,
            token or "-",
            str(ids[0]),
            str(ids[1]),
            run_tag,
            path,
            cookie or "-",
            str(self.pages),
        ]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + self.args.timeout + 30)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout[-1000:]}")
        return parse_bench_json(out.stdout)

    def drain(self, server: Server | None, connections: int, last: dict[str, Any]) -> None:
        """Wait until the server has finished the requests wrk left in flight when it stopped.

        Neither ARV nor the peer cancels a request whose client went away, so up to `connections`
        requests are still being served after wrk exits; without this pause that work would run
        inside the next measurement window (at 128 connections, a large part of a short window).
        """
        rps = last["requests"] / (last["duration_us"] / 1e6) if last["requests"] else 0
        if server is None:  # a peer we did not start: estimate from the last throughput
            time.sleep(min(5.0, connections / rps) if rps else 1.0)
            return
        # They take about connections / rps: slow pages (the admin's) may need more than 10 s.
        deadline = time.monotonic() + min(60.0, max(10.0, 2 * connections / rps if rps else 10.0))
        pids = server.pids()
        while time.monotonic() < deadline:
            before = cpu_seconds(pids)
            time.sleep(0.1)
            if cpu_seconds(pids) - before < 0.015:  # < 15 % of one core: idle
                return

    def run_cell(
        self, cell: Cell, *, base_url: str, mode: str, token: str, ids, path="/", cookie="", database=None, warmup=None,
        reps=None,
    ):  # fmt: skip
        """A warm-up, then `reps` measured runs (default --reps), added to the cell's: a side-by-side cell
        gets one run a round, on that round's server (Bench.run)."""
        args = self.args
        first_runs = not cell.reps  # else an earlier round's cell, already in self.cells
        duration = args.ceiling_duration if cell.target in ("http", "nodb") else args.duration
        server = self.monitor.server
        self.monitor.reset()
        warm = self.wrk(base_url, mode, cell.connections, warmup or args.warmup, token, ids, path, cookie)
        self.drain(server, cell.connections, warm)
        cell.duration_s = duration = run_length(cell.scenario, cell.connections, duration, warm)
        if database:
            sessions_before = self.pg.sessions(database)
        if server and cell.server_cpu_s is None:
            cell.server_cpu_s = 0.0
        for _ in range(reps or args.reps):
            cpu_before = cpu_seconds(server.pids()) if server else 0.0
            rep = self.wrk(base_url, mode, cell.connections, duration, token, ids, path, cookie)
            cell.reps.append(rep)
            self.drain(server, cell.connections, rep)
            if server:  # through the drain, like the sessions: the requests served, in flight ones too
                cell.server_cpu_s += cpu_seconds(server.pids()) - cpu_before
        if database:
            cell.new_sessions += self.pg.sessions(database) - sessions_before
        now = self.monitor.snapshot()
        if cell.monitor:  # an earlier round's: the peaks over all of them, the rest as it is now
            now["peak_backends"] = max(now["peak_backends"], cell.monitor["peak_backends"])
            now["peak_rss_kb"] = max(now["peak_rss_kb"], cell.monitor["peak_rss_kb"])
        cell.monitor = now
        if first_runs:
            self.cells.append(cell)
        s = cell.summary()
        log(
            f"{cell.label:<16} {cell.scenario:<7} c={cell.connections:<4} {duration:>2} s {s['rps']:>9.1f} req/s  "
            f"p50 {s['p50_ms']:>8.1f} ms  p99 {s['p99_ms']:>8.1f} ms  err {s['errors']}  "
            f"backends {s['peak_backends']}/{s['final_backends']}  sess/1k {s['sessions_per_1k']}  "
            f"cpu {s['server_cpu_ms_per_req']} ms/req  rss {s['rss_mb']} MB"
            + (f"  (round {self.round}/{self.rounds}: {len(cell.reps)} runs)" if self.rounds > 1 else "")
        )
        return cell

    # -- setup -------------------------------------------------------------------------------

    def arv_env(self, workers: int, checkout: Checkout | None = None, database: str | None = None) -> dict[str, str]:
        checkout = checkout or self.main
        env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}  # DB_POOL_* etc.: defaults
        env.update(
            DATABASE_URL=self.pg.url(database or self.run_db),
            DJANGO_SECRET_KEY="bench",
            DJANGO_DEBUG="false",
            DJANGO_SETTINGS_MODULE="arv.settings",
            WEB_CONCURRENCY=str(workers),
            PYTHONPATH=str(checkout.root),
            ARV_STATIC_ROOT=str(checkout.static_root),
        )
        env.update(item.split("=", 1) for item in self.args.arv_env)
        if checkout is self.baseline:
            env.update(item.split("=", 1) for item in self.args.baseline_env)
        return env

    def prepare_arv_database(self, database: str | None = None, companies: int | None = None) -> None:
        """Seed `database` (default --database) with `companies` (default --companies), analyse it and, for
        the side-by-side run, clone it for the first server."""
        args = self.args
        database, companies = database or args.database, companies or args.companies
        log(f"database {database}: drop/create, migrate, seed {companies} companies x {args.folders} folders")
        self.pg.recreate(database)
        env = self.arv_env(1, database=database)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run(
            [PYTHON, str(BENCH / "seed.py"), str(companies), str(args.folders), ADMIN_USERNAME, ADMIN_PASSWORD],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.seed = json.loads(out.stdout.strip().splitlines()[-1])
        self.ids = (self.seed["min_id"], self.seed["max_id"])
        out = subprocess.run(
            [PYTHON, "manage.py", "create_api_token", "bench", "--staff", "--name", "bench"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.token = out.stdout.strip().splitlines()[-1]
        self.pg.settle(database)
        if database == args.database:
            self.pg.clone(database, self.run_db)
        log(f"seeded ids {self.ids[0]}..{self.ids[1]} in {self.seed['seconds']}s; superuser and staff token created")

    def collect_static(self, checkout: Checkout) -> None:
        """The admin's templates look every static file up in the manifest (DEBUG is off)."""
        log(f"{checkout.name}: collectstatic into {checkout.static_root}")
        subprocess.run(
            [checkout.python, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=checkout.root,
            env=self.arv_env(1, checkout),
            check=True,
        )

    def prepare_baseline(self, baseline: Checkout) -> None:
        """Its own venv (its bin/setup, as bench/run does here); the database is this checkout's."""
        log(f"baseline: {baseline.root} at git {baseline.git()}: bin/setup")
        subprocess.run([str(baseline.root / "bin" / "setup")], check=True)
        check = subprocess.run(
            [baseline.python, "manage.py", "migrate", "--check", "-v", "0"],
            cwd=baseline.root,
            env=self.arv_env(1, baseline),
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:  # unapplied migrations (or a failure: its last line says which)
            last = (check.stderr.strip().splitlines() or ["unapplied migrations"])[-1]
            log(f"WARNING baseline: `manage.py migrate --check` failed ({last}); it runs on this checkout's schema")

    def start_server(self, name: str, argv: list[str], env, cwd, ready_path: str, workers: int, port: int) -> Server:
        server = Server(name, argv, env, cwd, ready_path, port)
        server.start(workers)
        self.servers.append(server)
        return server

    def stop_server(self, server: Server) -> None:
        self.monitor.watch(None, None)
        server.stop()
        self.servers.remove(server)

    def uvicorn_argv(self, app: str, port: int, workers: int, extra: list[str] | None = None, uvicorn=UVICORN):
        return [uvicorn, app, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--no-access-log", "--log-level", "warning", *(extra or [])]  # fmt: skip

    def start_arv(
        self, workers: int, app: str = "arv.asgi:application", ready="/api/health", checkout: Checkout | None = None
    ) -> Server:
        checkout = checkout or self.main
        port = free_port()
        return self.start_server(
            f"{checkout.target}-{app.split(':')[0].replace('.', '_')}-w{workers}",
            self.uvicorn_argv(app, port, workers, checkout.uvicorn_options, uvicorn=checkout.uvicorn),
            self.arv_env(workers, checkout),
            checkout.root,
            ready,
            workers,
            port,
        )

    # -- peer --------------------------------------------------------------------------------

    def prepare_peer(self) -> None:
        """The peer's own database, seeded by its seed.py (which does not analyse it: bench/run does,
        as it does ARV's), then cloned fresh for each of its servers."""
        args = self.args
        if not args.peer_dir:
            self.peer_token = args.peer_token or ""
            return
        peer_dir = self.peer_dir = Path(args.peer_dir).resolve()
        venv = Path(args.peer_venv)
        self.peer_uvicorn = venv / "bin" / "uvicorn"
        if not self.peer_uvicorn.exists():
            log(f"peer: creating {venv} and installing {peer_dir / 'requirements.txt'}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "-r", str(peer_dir / "requirements.txt")], check=True
            )
        log(f"peer: database {args.peer_db}: drop/create, seed {args.peer_companies} companies, VACUUM ANALYZE")
        self.pg.recreate(args.peer_db)
        env = dict(os.environ, DATABASE_URL=self.pg.url(args.peer_db, "postgresql+asyncpg"))
        out = subprocess.run(
            [str(venv / "bin" / "python"), "seed.py", str(args.peer_companies)],
            cwd=peer_dir,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.peer_token = out.stdout.strip().splitlines()[-1]
        self.pg.settle(args.peer_db)

    def start_peer(self, workers: int) -> Server:
        self.pg.clone(self.args.peer_db, self.peer_run_db)
        port = free_port()
        return self.start_server(
            f"peer-w{workers}",
            self.uvicorn_argv("app:app", port, workers, ["--loop", "uvloop", "--http", "httptools"],
                              str(self.peer_uvicorn)),
            dict(os.environ, DATABASE_URL=self.pg.url(self.peer_run_db, "postgresql+asyncpg")),
            self.peer_dir,
            "/api/health",
            workers,
            port,
        )  # fmt: skip

    # -- the Django contenders ---------------------------------------------------------------

    def start_contender(self, target: str, workers: int) -> Server:
        port = free_port()
        env = self.arv_env(workers)
        package = {"sync": "sync_gthread", "async": "async_pool"}.get(target, target.replace("-", "_"))
        env["DJANGO_SETTINGS_MODULE"] = f"bench.contenders.{package}.settings"
        if target.endswith("sync") and not target.endswith("async"):
            argv = [GUNICORN, f"bench.contenders.{package}.wsgi:application", "--worker-class", "gthread",
                    "--workers", str(workers), "--threads", str(CONTENDER_CONNECTIONS),
                    "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip
        else:
            argv = self.uvicorn_argv(f"bench.contenders.{package}.asgi:application", port, workers)
        return self.start_server(f"{target}-w{workers}", argv, env, ROOT, "/api/health", workers, port)

    # -- phases ------------------------------------------------------------------------------

    def run_arv(self, workers: int) -> None:
        """Without a baseline one server runs every scenario. With one, each scenario runs on a fresh
        server of the baseline, then of this checkout: one server at a time (an idle one would hold
        backends in the same database), and no other scenario's creates land between the two."""
        scenarios = self.args.scenarios
        batches = [[s] for s in scenarios] if self.baseline else [scenarios]
        checkouts = [self.baseline, self.main] if self.baseline else [self.main]
        profile = workers == 1 and self.args.profile_seconds > 0 and self.round == self.rounds
        for i, batch in enumerate(batches):
            for checkout in checkouts:
                # The profile runs on this checkout's last server, after its scenarios warmed it up.
                self.run_checkout(checkout, workers, batch, profile and checkout is self.main and i == len(batches) - 1)

    def run_checkout(self, checkout: Checkout, workers: int, scenarios: list[str], profile: bool) -> None:
        self.pg.clone(self.args.database, self.run_db)
        server = self.start_arv(workers, checkout=checkout)
        cookie = ""
        try:
            if any(s.startswith("admin") for s in scenarios):
                cookie = self.login(server)
            self.run_scenarios(server, checkout.target, f"{checkout.name} {workers}w", workers, scenarios, cookie)
            if profile:
                for scenario in self.args.profile_scenarios:
                    self.run_profile(server, scenario)
        finally:
            self.stop_server(server)

    def run_scenarios(
        self, server: Server | None, target: str, label: str, workers: int, scenarios: list[str], cookie: str = "",
        base_url: str | None = None,
    ) -> None:  # fmt: skip
        peer = target == "peer"
        database = self.args.peer_db if peer and not self.args.peer_dir else (self.peer_run_db if peer else self.run_db)
        self.monitor.watch(database, server)
        first = True
        for scenario in scenarios:
            admin = scenario.startswith("admin")  # a browser's session cookie, no API token
            for c in self.args.conns:
                key = (label, scenario, c)
                if key not in self.side_by_side_cells:
                    self.side_by_side_cells[key] = Cell(target, label, workers, scenario, c)
                self.run_cell(
                    self.side_by_side_cells[key],
                    base_url=base_url or server.base_url,
                    mode=scenario,
                    token="" if admin else (self.peer_token if peer else self.token),
                    cookie=cookie if admin else "",
                    ids=(1, self.args.peer_companies) if peer else self.ids,
                    database=database,
                    warmup=self.args.warmup + 1 if first else None,
                    reps=1,  # a run a round (Bench.run: --reps rounds)
                )
                first = False

    def run_contender(self, target: str, workers: int) -> None:
        if target == "peer":
            if self.args.peer:  # a peer someone else runs: measured as it is, at 1 process
                if workers == 1:
                    self.run_scenarios(None, "peer", "peer 1w", 1, self.args.peer_scenarios,
                                       base_url=self.args.peer.rstrip("/"))  # fmt: skip
                return
            server = self.start_peer(workers)
            scenarios = self.args.peer_scenarios
        else:
            self.pg.clone(self.args.database, self.run_db)
            server = self.start_contender(target, workers)
            scenarios = [s for s in self.args.scenarios if s in CONTENDER_SCENARIOS]
        try:
            self.run_scenarios(server, target, f"{CONTENDERS.get(target, target)} {workers}w", workers, scenarios)
        finally:
            self.stop_server(server)

    def login(self, server: Server) -> str:
        try:
            cookie = admin_login(server.base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
        except (OSError, RuntimeError) as exc:  # urllib's errors are OSErrors
            raise RuntimeError(f"{server.name}: admin login: {exc}; see {server.log_path}") from exc
        log(f"{server.name}: logged in to the admin as {ADMIN_USERNAME}")
        return cookie

    def run_sizes(self) -> None:
        """--sizes: the same reads on the same server settings at each data size, one size after the
        other, each on its own seeded and analysed database (read-only scenarios: no clone)."""
        args = self.args
        self.pages = SIZES_PAGES
        self.collect_static(self.main)
        workers = args.workers[0]
        for size in args.sizes:
            self.run_db = f"{args.database}_{size}"
            self.prepare_arv_database(self.run_db, size)
            server = self.start_arv(workers)
            try:
                cookie = self.login(server)
                self.monitor.watch(self.run_db, server)
                for scenario in args.scenarios:
                    admin = scenario.startswith("admin")
                    for c in args.conns:
                        cell = Cell("arv", f"ARV {workers}w {size:,}", workers, scenario, c, companies=size)
                        self.run_cell(
                            cell, base_url=server.base_url, mode=scenario, token="" if admin else self.token,
                            cookie=cookie if admin else "", ids=self.ids, database=self.run_db,
                            warmup=args.warmup + 1,
                        )  # fmt: skip
            finally:
                self.stop_server(server)

    def run_http_ceilings(self, workers: int) -> None:
        for target, app, ready, path, label in (
            ("http", "bench.bare_asgi:app", "/", "/", f"HTTP ceiling {workers}w"),
            ("nodb", "bench.arv_nodb:application", "/api/bench/ping", "/api/bench/ping", f"ARV no-DB {workers}w"),
        ):
            server = self.start_arv(workers, app, ready)
            self.monitor.watch(None, server)
            try:
                for c in self.args.conns:
                    self.run_cell(
                        Cell(target, label, workers, target, c), base_url=server.base_url, mode="get", token="",
                        ids=(1, 1), path=path,
                    )  # fmt: skip
            finally:
                self.stop_server(server)

    def run_db_ceiling(self) -> None:
        """The detail SQL at min(connections, one ARV process's pool) client connections."""
        done: dict[int, Cell] = {}
        self.monitor.watch(self.run_db, None)
        for c in self.args.conns:
            n = min(c, DB_POOL_MAX)
            if n in done:
                copy = Cell("db", done[n].label, 1, "db", c, reps=done[n].reps, db_connections=n)
                copy.new_sessions = done[n].new_sessions
                copy.monitor = done[n].monitor
                self.cells.append(copy)
                continue
            cell = Cell("db", "DB ceiling", 1, "db", c, db_connections=n)
            self.monitor.reset()
            argv = [PYTHON, str(BENCH / "dbceiling.py"), "--token", self.token,
                    "--min-id", str(self.ids[0]), "--max-id", str(self.ids[1]), "--connections", str(n),
                    "--processes", "2", "--warmup", str(self.args.warmup), "--duration", str(self.args.duration),
                    "--reps", str(self.args.reps)]  # fmt: skip
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.arv_env(1), stdout=subprocess.PIPE, text=True)
            for line in proc.stdout:
                if line.startswith("WARMED"):
                    sessions_before = self.pg.sessions(self.run_db)
                    self.monitor.reset()
                elif line.startswith("BENCH_JSON "):
                    cell.reps.append(json.loads(line[len("BENCH_JSON ") :]))
                    if len(cell.reps) == self.args.reps:
                        cell.monitor = self.monitor.snapshot()
                elif line.startswith("STATEMENTS "):
                    self.db_statements = json.loads(line[len("STATEMENTS ") :])
            if proc.wait() != 0:
                raise RuntimeError("bench/dbceiling.py failed")
            cell.new_sessions = self.pg.sessions(self.run_db) - sessions_before
            self.cells.append(cell)
            done[n] = cell
            s = cell.summary()
            log(
                f"DB ceiling       db      n={n:<4} {s['rps']:>9.1f} tx/s   p50 {s['p50_ms']:>8.1f} ms  p99 {s['p99_ms']:>8.1f} ms"
            )

    def run_profile(self, server: Server, scenario: str) -> None:
        """py-spy on the uvicorn process while wrk loads one scenario: GIL-holding samples
        (where the process's CPU goes), then all threads' wall-clock samples (where a request waits)."""
        py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
        if not Path(py_spy).exists():
            log("py-spy not installed (bin/setup --bench): no profile")
            return
        seconds, c = self.args.profile_seconds, self.args.profile_connections
        profile = self.profiles[scenario] = {"seconds": seconds, "connections": c}
        for kind, extra in (("cpu", ["--gil"]), ("wall", [])):
            raw = Path("/tmp") / f"arv-bench-profile-{self.tag}-{scenario}-{kind}.txt"
            log(f"profiling ARV {scenario} at c={c} for {seconds}s with py-spy ({kind}; raw stacks: {raw})")
            spy = subprocess.Popen(
                [py_spy, "record", "--pid", str(server.proc.pid), "--duration", str(seconds), "--rate", "100",
                 "--format", "raw", "--threads", "--nonblocking", *extra, "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(0.5)
            load = self.wrk(server.base_url, scenario, c, seconds, self.token, self.ids)
            err = spy.communicate(timeout=seconds + 60)[1]
            if spy.returncode != 0 or not raw.exists():
                log(f"py-spy failed: {err.strip()[-500:]}")
                continue
            summary = summarize_profile(raw.read_text())
            summary.update(raw_file=str(raw), rps_under_profiler=round(load["requests"] / seconds, 1))
            profile[kind] = summary

    # -- main --------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        self.monitor.start()
        if args.sizes:
            try:
                self.run_sizes()
            finally:
                for server in list(self.servers):
                    self.stop_server(server)
                self.monitor.stop()
            self.report()
            return
        try:
            self.prepare_arv_database()
            if self.baseline:
                self.prepare_baseline(self.baseline)
            if any(s.startswith("admin") for s in args.scenarios):
                for checkout in (self.main, self.baseline):
                    if checkout:
                        self.collect_static(checkout)
            if not args.skip_ceilings:
                self.run_http_ceilings(args.workers[0])
                self.run_db_ceiling()
            if args.peer_dir or args.peer:
                self.prepare_peer()
            alternatives = (["peer"] if args.peer_dir or args.peer else []) + args.contenders
            self.rounds = args.reps
            for i, workers in enumerate(args.workers):
                # Each server in turn on a fresh clone of the same analysed data, one at a time, in
                # rounds: a round starts every server once and gives each of its cells one measured
                # run, so each contender's median is over the same stretches of the sitting, and the
                # shared machine's drift (its speed moved 1.5x within minutes) reaches all alike.
                for n in range(1, self.rounds + 1):
                    self.round = n
                    self.run_arv(workers)
                    for target in alternatives:
                        self.run_contender(target, workers)
                if i > 0 and not args.skip_ceilings:
                    self.run_http_ceilings(workers)
        finally:
            for server in list(self.servers):
                self.stop_server(server)
            self.monitor.stop()
        self.report()

    def environment(self) -> dict[str, Any]:
        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "?"

        cpu = "?"
        try:
            cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("Copyright")[0].strip()
        return {
            "cpus": os.cpu_count(),
            "cpu": cpu,
            "loadavg_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "postgresql": self.pg.version(),
            "wrk": wrk_version,
            "packages": {
                p: version(p) for p in ("django", "django-ninja", "uvicorn", "uvloop", "httptools", "psycopg")
            },
            "git": self.main.git(),
        }

    def report(self) -> None:
        args = self.args
        RESULTS.mkdir(exist_ok=True)
        stamp = self.tag
        rows = [c.summary() for c in self.cells]
        add_fractions(rows)
        data = {
            "timestamp": stamp,
            "command": " ".join(sys.argv),
            "mode": "quick" if args.quick else "full",
            "settings": {
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "ceiling_duration_s": args.ceiling_duration,
                "reps": args.reps,
                "rounds": self.rounds,
                "connections": args.conns,
                "workers": args.workers,
                "wrk_threads": args.threads,
                "companies": args.companies,
                "folders_each": args.folders,
                "peer_companies": args.peer_companies if (args.peer or args.peer_dir) else None,
                "sizes": args.sizes,
                "arv_env": args.arv_env,
                "pages_cap": self.pages or None,
            },
            "environment": self.environment(),
            "baseline": {"dir": str(self.baseline.root), "git": self.baseline.git()} if self.baseline else None,
            "scenarios": SCENARIO_TEXT,
            "db_ceiling_statements": getattr(self, "db_statements", None),
            "rows": rows,
            "profiles": self.profiles,
            "elapsed_s": round(time.monotonic() - self.started, 1),
        }
        md = render_markdown(data)
        (RESULTS / f"{stamp}.json").write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / f"{stamp}.md").write_text(md)
        chart = RESULTS / f"{stamp}.png"
        try:
            render_chart(rows, chart)
        except ImportError:
            log("matplotlib missing (bin/setup --bench): no chart")
            chart = None
        print()
        print(md)
        log(f"wrote {RESULTS / (stamp + '.md')}, .json{', .png' if chart else ''} in {data['elapsed_s']:.0f}s")


# ----------------------------------------------------------------------------- analysis


def add_fractions(rows: list[dict[str, Any]]) -> None:
    """Each ARV (baseline, peer) figure as a fraction of the ceilings at the same workers and concurrency."""
    ceilings = {
        (r["target"], r["workers"], r["connections"]): r["rps"] for r in rows if r["target"] in ("http", "nodb")
    }
    db = {r["connections"]: r["rps"] for r in rows if r["target"] == "db"}
    for r in rows:
        if r["target"] not in ("arv", "baseline", *BESIDE):
            continue
        key = (r["workers"], r["connections"])
        http, nodb = ceilings.get(("http", *key)), ceilings.get(("nodb", *key))
        r["pct_http"] = round(100 * r["rps"] / http, 1) if http else None
        r["pct_nodb"] = round(100 * r["rps"] / nodb, 1) if nodb else None
        dbc = db.get(r["connections"]) if r["scenario"] == "detail" else None
        r["pct_db"] = round(100 * r["rps"] / dbc, 1) if dbc else None
    for r in rows:
        # Little's law: a closed loop of N connections at X req/s has a mean latency of N / X.
        r["little_mean_ms"] = round(1000 * r["connections"] / r["rps"], 1) if r["rps"] and r["target"] != "db" else None


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render_markdown(data: dict[str, Any]) -> str:
    s, env, rows, base = data["settings"], data["environment"], data["rows"], data.get("baseline")
    out = [
        f"# ARV benchmark {data['timestamp']} ({data['mode']})",
        "",
        f"`{data['command']}` — {env['cpus']} CPUs ({env['cpu']}), Python {env['python']}, "
        f"PostgreSQL {env['postgresql']}, {env['wrk']}, git {env['git']}; "
        + ", ".join(f"{k} {v}" for k, v in env["packages"].items())
        + ".",
        "",
        f"Load: wrk, {s['wrk_threads']} threads, warm-up {s['warmup_s']} s then {s['reps']} × {s['duration_s']} s "
        f"(ceilings HTTP/no-DB {s['ceiling_duration_s']} s), median of the repetitions"
        + (
            f", taken in {s['rounds']} rounds: each round starts every server anew on a fresh clone and gives each "
            "of its cells one run, so every contender's median spans the same stretches of the sitting. "
            if s.get("rounds", 1) > 1
            else ". "
        )
        + f"Data: {' and '.join(f'{n:,}' for n in s.get('sizes') or [s['companies']])} companies × "
        f"{s['folders_each']} folders"
        + (f", list and admin pages among the first {s['pages_cap']}" if s.get("pages_cap") else "")
        + (f"; peer: {s['peer_companies']:,} companies (no folders)" if s["peer_companies"] else "")
        + f". ARV: uvicorn `--no-access-log --loop {ARV_LOOP}` (its README's), "
        + "DB_POOL_SIZE 20 + DB_MAX_OVERFLOW 10 per process"
        + (f" ({', '.join(s['arv_env'])})" if s.get("arv_env") else "")
        + ". "
        + (
            f"Sync Django contenders: gunicorn gthread, {CONTENDER_CONNECTIONS} threads per process; async ones: "
            f"uvicorn, Django's pool max_size {CONTENDER_CONNECTIONS} per process; peer: pool_size 20 + max_overflow "
            "10 per process. Each server started on a fresh clone of the same seeded, analysed database. "
            if any(r["target"] in BESIDE for r in rows)
            else ""
        )
        + (
            f"Baseline: {base['dir']} at git {base['git']}, same database, environment and load; each scenario "
            "ran on a fresh server of the baseline, then of ARV, one server at a time. "
            if base
            else ""
        )
        + lengthened_runs(rows, s["duration_s"])
        + f"Elapsed {data['elapsed_s']:.0f} s; load average at the end {env['loadavg_at_end'][0]:.2f}.",
        "",
        "Between runs the bench waits until the server is idle again (it finishes requests wrk abandoned). "
        "Columns: req/s (median); p50/p99 latency in ms (median of the repetitions' wrk percentiles; wrk only "
        "counts requests that complete within a run, so p99 cannot exceed the run's length); errors = 4xx/5xx "
        "(and, in the admin scenario, 3xx) + socket errors over all repetitions; backends = peak / final client "
        "backends of the database under test (pg_stat_activity, polled every 100 ms); sess/1k = new PostgreSQL "
        "sessions per 1,000 requests (pg_stat_database.sessions); CPU ms/req = the server's CPU time (uvicorn and "
        "its children, user + system) per request"
        + (
            "; both per request served: wrk's completed ones and those in flight when it stopped, which the server "
            "finishes before the next run. "
            if any("served" in r for r in rows)  # older saved runs: per completed request
            else "; "
        )
        + "RSS = uvicorn and its children at the end (peak); % HTTP, % no-DB, % DB = req/s as a fraction of the "
        "ceilings at the same workers and connections; N/X ms = connections ÷ req/s, the mean latency Little's law implies for a closed loop: a p99 far below it means some requests waited "
        "longer than the run and are missing from wrk's percentiles (unfair queueing).",
        "",
        "| target | scenario | conns | req/s | p50 ms | p99 ms | N/X ms | errors | backends | sess/1k | CPU ms/req | "
        "RSS MB | % HTTP | % no-DB | % DB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = {"http": 0, "nodb": 1, "db": 2, "arv": 3, "baseline": 4, "peer": 5}
    order.update({t: 6 + i for i, t in enumerate(CONTENDERS)})

    def row_order(r: dict[str, Any]) -> tuple[int, int, int, int]:
        workers = r["workers"]
        scenario = ARV_SCENARIOS.index(r["scenario"]) if r["scenario"] in ARV_SCENARIOS else 0
        return order[r["target"]], workers, r.get("companies") or 0, scenario, r["connections"]

    for r in sorted(rows, key=row_order):
        conns = f"{r['connections']}" + (
            f" ({r['db_connections']} db)" if r["db_connections"] and r["db_connections"] != r["connections"] else ""
        )
        rss = f"{fmt(r['rss_mb'])} ({fmt(r['peak_rss_mb'])})" if r["rss_mb"] else "–"
        backends = (
            f"{r['peak_backends']} / {r['final_backends']}"
            if r["peak_backends"] is not None and r["target"] not in ("http", "nodb")
            else "–"
        )
        sess = fmt(r["sessions_per_1k"], 2) if r["target"] not in ("http", "nodb") else "–"
        out.append(
            f"| {r['label']} | {r['scenario']} | {conns} | {fmt(r['rps'])} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | "
            f"{fmt(r.get('little_mean_ms'))} | "
            f"{r['errors']} | {backends} | {sess} | {fmt(r['server_cpu_ms_per_req'], 2)} | {rss} | {fmt(r.get('pct_http'))} | {fmt(r.get('pct_nodb'))} | "
            f"{fmt(r.get('pct_db'))} |"
        )
    arv = {(r["workers"], r["scenario"], r["connections"]): r for r in rows if r["target"] == "arv"}
    baseline = {(r["workers"], r["scenario"], r["connections"]): r for r in rows if r["target"] == "baseline"}
    if baseline:
        keys = sorted((k for k in baseline if k in arv), key=lambda k: (k[0], ARV_SCENARIOS.index(k[1]), k[2]))
        out += ["", f"## ARV vs baseline ({base['dir']} at git {base['git']}; same run, database and load)", ""]
        out += versus("baseline", ["workers", "scenario", "conns"], [(list(k), arv[k], baseline[k]) for k in keys])
    out += side_by_side(rows)
    out += by_size(rows)
    out += ["", "## Scenarios", ""]
    out += [f"- **{k}**: {v}" for k, v in data["scenarios"].items()]
    profiles = data.get("profiles") or ({"detail": data["profile"]} if data.get("profile") else {})
    for scenario, prof in profiles.items():
        out += [
            "",
            f"## Profile: ARV {scenario} endpoint, 1 worker, c={prof['connections']}, py-spy {prof['seconds']} s each",
            "",
        ]
        titles = {
            "cpu": "CPU: samples of the thread holding the GIL (where the process's CPU time goes)",
            "wall": "Wall clock: samples of all threads that are not idle (where requests wait)",
        }
        for kind in ("cpu", "wall"):
            p = prof.get(kind)
            if not p:
                continue
            out += [
                f"### {titles[kind]}",
                "",
                f"{p['samples']} samples, {fmt(p['rps_under_profiler'])} req/s under the profiler. By thread: "
                + ", ".join(f"{k} {v:.1f}%" for k, v in p["threads"].items()),
                "",
                "| % | area |",
                "|--:|---|",
                *[f"| {pct:.1f} | {name} |" for name, pct in p["areas"]],
                "",
                "| inclusive % | function |",
                "|--:|---|",
                *[f"| {pct:.1f} | `{name}` |" for name, pct in p["inclusive"][:20]],
                "",
                "| self % | function |",
                "|--:|---|",
                *[f"| {pct:.1f} | `{name}` |" for name, pct in p["self"][:15]],
                "",
            ]
    return "\n".join(out) + "\n"


def lengthened_runs(rows: list[dict[str, Any]], duration: int) -> str:
    """The runs longer than --duration (MIN_REQUESTS_PER_CONNECTION), as a sentence."""
    longer = [r for r in rows if r["target"] in ("arv", "baseline", *BESIDE) and (r.get("duration_s") or 0) > duration]
    if not longer:
        return ""
    runs = ", ".join(f"{r['label']} {r['scenario']} c={r['connections']} {r['duration_s']} s" for r in longer)
    return f"Runs lengthened so that each connection completes several requests (slow pages): {runs}. "


def by_size(rows: list[dict[str, Any]]) -> list[str]:
    """--sizes: each read's p50 and req/s at every data size, and p50 at the largest over the smallest."""
    sized = [r for r in rows if r.get("companies")]
    sizes = sorted({r["companies"] for r in sized})
    if len(sizes) < 2:
        return []
    cells = {(r["scenario"], r["connections"], r["companies"]): r for r in sized}
    keys = sorted({(r["scenario"], r["connections"]) for r in sized}, key=lambda k: (ARV_SCENARIOS.index(k[0]), k[1]))
    small, large = sizes[0], sizes[-1]
    out = ["", f"## Data size: {' vs '.join(f'{n:,}' for n in sizes)} companies (same server settings)", ""]
    out += [
        "| scenario | conns | " + " | ".join(f"p50 ms {n:,}" for n in sizes) + " | "
        + " | ".join(f"req/s {n:,}" for n in sizes) + f" | p50 {large:,} / {small:,} | within 2x |",
        "|---|--:|" + "--:|" * (2 * len(sizes) + 1) + "---|",
    ]  # fmt: skip
    for scenario, conns in keys:
        row = [cells.get((scenario, conns, n)) for n in sizes]
        a, b = row[0], row[-1]
        ratio = b["p50_ms"] / a["p50_ms"] if a and b and a["p50_ms"] else None
        out.append(
            f"| {scenario} | {conns} | "
            + " | ".join(fmt(c["p50_ms"]) if c else "–" for c in row)
            + " | "
            + " | ".join(fmt(c["rps"]) if c else "–" for c in row)
            + f" | {fmt(ratio, 2)} | {'✓' if ratio is not None and ratio <= 2 else '✗'} |"
        )
    return out


def side_by_side(rows: list[dict[str, Any]]) -> list[str]:
    """ARV beside every contender that ran, per workers, scenario and connections: req/s and ratios,
    p99, CPU per request (beside the ceilings'), peak backends and new sessions per 1,000. "best" and
    the p99 check count the alternatives only (ALTERNATIVES), not the diagnostic rows (DIAGNOSTIC)."""
    by_key = {(r["target"], r["workers"], r["scenario"], r["connections"]): r for r in rows}
    present = [t for t in BESIDE if any(r["target"] == t for r in rows)]
    keys = sorted(
        {k[1:] for k in by_key if k[0] == "arv" and any((t, *k[1:]) in by_key for t in present)},
        key=lambda k: (k[0], ARV_SCENARIOS.index(k[1]), k[2]),
    )
    if not keys:
        return []
    names = ["ARV"] + [CONTENDERS.get(t, t) for t in present]
    targets = ["arv", *present]
    counted = [i for i, t in enumerate(present) if t in ALTERNATIVES]  # indexes into cells[1:]
    head = "| workers | scenario | conns | "
    out = ["", "## Side by side (same machine, same run, each on a fresh clone of the same analysed data)", ""]
    out += [
        "req/s (median); ARV / X is the ratio of requests per second; **best** is the fastest alternative "
        f"({', '.join(CONTENDERS.get(t, t) for t in ALTERNATIVES)}); the rows running ARV's queries on a textbook "
        "server are a diagnostic (they isolate the serving stack) and do not count in best.",
        "",
        head + " | ".join(names) + " | " + " | ".join(f"ARV / {n}" for n in names[1:]) + " | ARV / best |",
        "|--:|---|--:|" + "--:|" * (2 * len(names)),
    ]
    ratios_at_32 = []
    for key in keys:
        cells = [by_key.get((t, *key)) for t in targets]
        arv = cells[0]
        ratios = [arv["rps"] / c["rps"] if c and c["rps"] else None for c in cells[1:]]
        best = max((cells[1 + i]["rps"] for i in counted if cells[1 + i]), default=0)
        best_ratio = arv["rps"] / best if best else None
        if key[2] == 32 and best_ratio is not None:
            ratios_at_32.append((best_ratio, key))
        out.append(
            f"| {key[0]} | {key[1]} | {key[2]} | "
            + " | ".join(fmt(c["rps"]) if c else "–" for c in cells)
            + " | "
            + " | ".join(fmt(x, 2) for x in ratios)
            + f" | **{fmt(best_ratio, 2)}** |"
        )
    out += [
        "",
        "p99 latency, ms (median of the repetitions), counting the requests still unanswered when wrk "
        "stopped: wrk's own p99 leaves them out; where they prove the p99 higher (a lower bound from "
        "Little's law, bench/run.py p99_counting_unanswered_us) the bound is shown, marked ≥, with wrk's "
        "figure in brackets. ✓: ARV's is the lowest of ARV and the alternatives.",
        "",
    ]
    out += [head + " | ".join(names) + " | ARV lowest |", "|--:|---|--:|" + "--:|" * len(names) + "---|"]
    p99_misses = 0

    def p99(cell: dict[str, Any] | None) -> float | None:
        return cell.get("p99_unanswered_ms", cell["p99_ms"]) if cell else None

    def shown(cell: dict[str, Any] | None) -> str:
        if not cell or p99(cell) is None:
            return "–"
        # The figure compared is the figure shown: the bound, where it is above wrk's p99.
        return f"≥{fmt(p99(cell))} ({fmt(cell['p99_ms'])})" if p99(cell) > cell["p99_ms"] else fmt(cell["p99_ms"])

    for key in keys:
        cells = [by_key.get((t, *key)) for t in targets]
        others = [p99(cells[1 + i]) for i in counted if p99(cells[1 + i]) is not None]
        lowest = p99(cells[0]) is not None and all(p99(cells[0]) <= x for x in others)
        p99_misses += not lowest
        out.append(
            f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(map(shown, cells)) + f" | {'✓' if lowest else '✗'} |"
        )
    ceilings = [("nodb", "ceiling: ARV, no database"), ("http", "ceiling: bare ASGI")]
    out += [
        "",
        "CPU ms per request: the server's CPU time (all its processes, user + system) per request served; "
        "the ceilings' at the same processes and connections.",
        "",
    ]
    out += [
        head + " | ".join([*names, *(n for _, n in ceilings)]) + " |",
        "|--:|---|--:|" + "--:|" * (len(names) + len(ceilings)),
    ]
    for key in keys:
        cells = [by_key.get((t, *key)) for t in targets] + [by_key.get((t, key[0], t, key[2])) for t, _ in ceilings]
        out.append(
            f"| {key[0]} | {key[1]} | {key[2]} | "
            + " | ".join(fmt(c["server_cpu_ms_per_req"], 2) if c else "–" for c in cells)
            + " |"
        )
    out += ["", "Database: peak client backends / new sessions per 1,000 requests served.", ""]
    out += [head + " | ".join(names) + " |", "|--:|---|--:|" + "--:|" * len(names)]
    for key in keys:
        cells = [by_key.get((t, *key)) for t in targets]
        out.append(
            f"| {key[0]} | {key[1]} | {key[2]} | "
            + " | ".join(f"{c['peak_backends']} / {fmt(c['sessions_per_1k'], 2)}" if c else "–" for c in cells)
            + " |"
        )
    arv_sessions = [by_key[("arv", *k)]["sessions_per_1k"] or 0 for k in keys]
    summary = []
    if ratios_at_32:
        worst, where = min(ratios_at_32)
        summary.append(
            f"at 32 connections ARV / best alternative is {worst:.2f} at the lowest "
            f"({where[1]}, {where[0]} process{'es' if where[0] > 1 else ''}; target 1.5)"
        )
    summary.append(f"ARV's p99 is above some alternative's in {p99_misses} of {len(keys)} cells (target 0)")
    summary.append(f"ARV's new sessions per 1,000 requests: at most {max(arv_sessions):.2f} (target 0)")
    out += ["", "**Against the targets:** " + "; ".join(summary) + "."]
    return out


def versus(other: str, keys: list[str], pairs: list[tuple[list[Any], dict[str, Any], dict[str, Any]]]) -> list[str]:
    """A table of ARV's rows beside another contender's, key by key; the ratio is ARV / other."""
    out = [
        f"| {' | '.join(keys)} | ARV req/s | {other} req/s | ARV / {other} | ARV p50 / p99 ms | {other} p50 / p99 ms "
        f"| ARV N/X ms | {other} N/X ms | ARV CPU ms/req | {other} CPU ms/req | ARV errors | {other} errors "
        f"| ARV sess/1k | {other} sess/1k | ARV backends | {other} backends |",
        "|" + "|".join("---" if k == "scenario" else "--:" for k in keys) + "|--:" * 15 + "|",
    ]
    for key, a, b in pairs:
        ratio = a["rps"] / b["rps"] if b["rps"] else None
        out.append(
            f"| {' | '.join(str(k) for k in key)} | {fmt(a['rps'])} | {fmt(b['rps'])} | {fmt(ratio, 2)} | "
            f"{fmt(a['p50_ms'])} / {fmt(a['p99_ms'])} | {fmt(b['p50_ms'])} / {fmt(b['p99_ms'])} | "
            f"{fmt(a.get('little_mean_ms'))} | {fmt(b.get('little_mean_ms'))} | "
            f"{fmt(a['server_cpu_ms_per_req'], 2)} | {fmt(b['server_cpu_ms_per_req'], 2)} | "
            f"{a['errors']} | {b['errors']} | {fmt(a['sessions_per_1k'], 2)} | "
            f"{fmt(b['sessions_per_1k'], 2)} | {a['peak_backends']} / {a['final_backends']} | "
            f"{b['peak_backends']} / {b['final_backends']} |"
        )
    return out


AREAS = [
    # (area, regex on a frame "function (file)"); the first frame from the leaf up that matches decides
    ("DB worker thread idle (waiting for a job)", r"^DatabaseWorker\._serve \("),
    ("event loop in C (uvloop: polling, socket I/O)", r"^Runner\.run \(asyncio"),  # asyncio's own: last row
    ("psycopg: round trips to PostgreSQL, wire protocol", r"psycopg[/\\]|psycopg_binary|psycopg_c"),
    (
        "Django ORM: building and compiling SQL",
        r"django[/\\]db[/\\]models[/\\](sql[/\\]|query\.py|expressions|lookups|fields|functions|aggregates|query_utils)",
    ),
    ("Django ORM: model instances from rows", r"django[/\\]db[/\\]models[/\\]base\.py"),
    (
        "Django db backend, transaction, connection upkeep",
        r"django[/\\]db[/\\](backends|transaction|utils)|arv[/\\]db[/\\]transaction",
    ),
    (
        "pydantic / ninja output validation, JSON rendering",
        r"pydantic|ninja[/\\](schema|responses|renderers)|json[/\\]",
    ),
    ("django-ninja operation, parameters, auth", r"ninja[/\\]"),
    ("Django request/response, URL resolving, handler", r"django[/\\](core|http|urls|utils|dispatch)"),
    ("ARV pool and worker hand-off (arv.db.workers), asgiref", r"arv[/\\]db[/\\]workers|asgiref"),
    ("ARV other (auth, selectors, asgi)", r"arv[/\\]|companies[/\\]"),
    ("uvicorn / httptools / asyncio", r"uvicorn|httptools|asyncio|uvloop|selectors"),
    ("threading / queue", r"threading|queue"),
]
ROOT_FRAMES = re.compile(
    r"^(<module> |Thread\._bootstrap|Thread\.run |Command\.|Context\.invoke |main \(uvicorn|run \(uvicorn"
    r"|Server\.run |asyncio_run |Runner\.run )"
)


def summarize_profile(raw: str) -> dict[str, Any]:
    """Collapsed py-spy stacks ("thread;frame;...;frame count") -> % of samples by thread kind,
    area, function (inclusive) and leaf function (self)."""
    total = 0
    inclusive: dict[str, int] = {}
    self_: dict[str, int] = {}
    threads: dict[str, int] = {}
    areas: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        name = thread.rpartition(": ")[2].strip() or thread
        name = re.sub(r"[-_]\d+$", "-N", name)
        threads[name] = threads.get(name, 0) + count
        total += count
        names = [re.sub(r":\d+\)$", ")", f) for f in frames]  # drop line numbers
        for n in set(names):
            inclusive[n] = inclusive.get(n, 0) + count
        if names:
            self_[names[-1]] = self_.get(names[-1], 0) + count
        area = "other"
        for frame in reversed(names):
            hit = next((a for a, pattern in AREAS if re.search(pattern, frame)), None)
            if hit:
                area = hit
                break
        areas[area] = areas.get(area, 0) + count

    def pct(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])] if total else []

    return {
        "samples": total,
        "threads": dict(pct(threads)),
        "areas": pct(areas),
        "inclusive": [x for x in pct(inclusive) if not ROOT_FRAMES.match(x[0])][:40],
        "self": pct(self_)[:40],
    }


def render_chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: list[str] = []
    series: dict[str, dict[str, dict[str, Any]]] = {}
    names = {"http": "ceiling HTTP", "nodb": "ceiling no-DB", "db": "ceiling DB"}
    for r in rows:
        scenario = names.get(r["target"], r["scenario"])
        group = f"{scenario}\nc={r['connections']}"
        if group not in groups:
            groups.append(group)
        workers = f"{r['workers']} worker" + ("s" if r["workers"] > 1 else "")
        name = {"arv": "ARV", "baseline": "baseline", **CONTENDERS}.get(r["target"], r["target"])
        who = f"{name}, {workers}" if r["target"] not in ("http", "nodb", "db") else workers
        series.setdefault(who, {})[group] = r
    order = [g for s in ARV_SCENARIOS for g in groups if g.startswith(s + "\n")]
    order += [g for g in groups if g not in order]
    fig, axes = plt.subplots(2, 1, figsize=(max(12, len(order) * 0.75), 9), sharex=True)
    width = 0.8 / max(1, len(series))
    for i, (who, by_group) in enumerate(sorted(series.items())):
        xs = [k + i * width - 0.4 + width / 2 for k, g in enumerate(order) if g in by_group]
        axes[0].bar(xs, [by_group[g]["rps"] for g in order if g in by_group], width, label=who)
        axes[1].bar(xs, [by_group[g]["p99_ms"] or 0 for g in order if g in by_group], width, label=who)
    axes[0].set_ylabel("requests/s (median, log)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("p99 latency ms (log)")
    axes[1].set_yscale("log")
    axes[0].legend()
    axes[0].set_title("ARV benchmark: throughput and p99 by scenario and connections")
    axes[1].set_xticks(range(len(order)), order, fontsize=7)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ----------------------------------------------------------------------------- cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ARV benchmark (see bench/run.py's docstring).")
    p.add_argument("--quick", action="store_true", help="~5 minutes: 1 process, 1 repetition, short runs")
    p.add_argument("--reps", type=int, help="measured repetitions per scenario (default 3; quick 1)")
    p.add_argument("--warmup", type=int, help="warm-up seconds before each scenario (default 1)")
    p.add_argument("--duration", type=int, help="seconds per measured repetition (default 2; quick 3)")
    p.add_argument("--ceiling-duration", type=int, help="seconds per repetition of the HTTP/no-DB ceilings (default 2)")
    p.add_argument("--conns", default="16,32,128", help="wrk connections, comma-separated")
    p.add_argument("--workers", help="uvicorn worker counts, comma-separated (default 1,2; quick 1)")
    p.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, of {','.join(ARV_SCENARIOS)} (default: all but admin)",
    )
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--timeout", type=int, default=10, help="wrk socket/request timeout, seconds")
    p.add_argument("--skip-ceilings", action="store_true")
    p.add_argument("--profile-seconds", type=int, help="py-spy each profiled scenario this long (0: no profile)")
    p.add_argument(
        "--profile-scenarios", default="detail,list,search,create", help="scenarios py-spy profiles, comma-separated"
    )
    p.add_argument("--profile-connections", type=int, default=32)
    p.add_argument("--companies", type=int, default=10_000)
    p.add_argument(
        "--sizes",
        help="data-size mode: comma-separated company counts (e.g. 10000,1000000); the reads "
        f"({','.join(SIZES_SCENARIOS)}) at each size, list and admin pages among the first {SIZES_PAGES}",
    )
    p.add_argument("--folders", type=int, default=2)
    p.add_argument("--database", default="arv_bench")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--peer", help="base URL of a running peer (e.g. http://127.0.0.1:8001)")
    p.add_argument("--peer-token", help="bearer token for --peer")
    p.add_argument("--peer-dir", help="start the FastAPI peer from this directory (its README's steps)")
    p.add_argument("--peer-venv", default="/tmp/peer-venv")
    p.add_argument("--peer-db", default="peer", help="the peer's database (polled for backends/sessions)")
    p.add_argument("--peer-companies", type=int, default=10_000, help="companies the peer is seeded with (ids 1..N)")
    p.add_argument("--peer-scenarios", default=",".join(PEER_SCENARIOS))
    p.add_argument(
        "--arv-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for ARV's servers (e.g. DB_RUNNING_JOBS=4); repeatable",
    )
    p.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the baseline's servers only, after --arv-env (e.g. ARV_METRICS_TOKEN=)",
    )
    p.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="Django deployments measured beside ARV (bench/contenders/): textbook-sync, textbook-async "
        "(alternatives), sync, async (diagnostic: ARV's queries on those servers), or none",
    )
    p.add_argument(
        "--baseline-dir",
        help="another clone of this repository (its .venv from its bin/setup): measured as 'baseline' beside this one",
    )
    args = p.parse_args(argv)
    q = args.quick
    args.reps = args.reps or (1 if q else 3)
    args.warmup = args.warmup if args.warmup is not None else 1
    args.duration = args.duration or (3 if q else 2)
    args.ceiling_duration = args.ceiling_duration or 2
    args.workers = [int(x) for x in (args.workers or ("1" if q else "1,2")).split(",")]
    args.conns = [int(x) for x in args.conns.split(",")]
    args.sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else []
    if args.sizes and args.scenarios == ",".join(DEFAULT_SCENARIOS):
        args.scenarios = ",".join(SIZES_SCENARIOS)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.profile_scenarios = [s for s in args.profile_scenarios.split(",") if s]
    args.peer_scenarios = [s for s in args.peer_scenarios.split(",") if s]
    args.contenders = [c for c in args.contenders.split(",") if c and c != "none"]
    if unknown := [c for c in args.contenders if c not in CONTENDERS]:
        p.error(f"unknown contenders {','.join(unknown)} (known: {','.join(CONTENDERS)})")
    if args.profile_seconds is None:
        args.profile_seconds = 5 if q else 12
    if args.peer and args.peer_dir:
        p.error("--peer and --peer-dir exclude each other")
    if admin := [s for s in args.profile_scenarios if s.startswith("admin")]:
        p.error(f"--profile-scenarios: {','.join(admin)} cannot be profiled (wrk sends no session cookie there)")
    unknown = [s for s in args.scenarios + args.profile_scenarios if s not in ARV_SCENARIOS]
    if unknown:
        p.error(f"unknown scenarios {','.join(unknown)} (known: {','.join(ARV_SCENARIOS)})")
    if args.baseline_dir and not (Path(args.baseline_dir) / "manage.py").exists():
        p.error(f"--baseline-dir {args.baseline_dir}: no manage.py there (a clone of this repository?)")
    if not shutil.which("wrk"):
        p.error("wrk is missing: apt-get install -y wrk")
    return args


def render_saved(path: Path) -> None:
    """Re-render the .md and .png of a saved run from its .json (after a change to the report's layout)."""
    data = json.loads(path.read_text())
    for r in data["rows"]:
        if r["target"] in ("http", "nodb"):
            r["peak_backends"] = r["final_backends"] = None
    add_fractions(data["rows"])
    path.write_text(json.dumps(data, indent=1) + "\n")
    md = render_markdown(data)
    path.with_suffix(".md").write_text(md)
    render_chart(data["rows"], path.with_suffix(".png"))
    print(md)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        render_saved(Path(sys.argv[2]))
        return
    args = parse_args()
    # Stopped with SIGTERM (kill, a timeout), the bench stops its servers as on Ctrl-C, through
    # Bench.run's finally: they run in sessions of their own, and one left running kept
    # reconnecting to the next run's database (its pool keeper) and doubled that run's backends.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    Bench(args).run()


if __name__ == "__main__":
    main()

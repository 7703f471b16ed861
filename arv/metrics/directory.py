"""Where the server processes keep their metrics: prometheus_client's multiprocess files.

With `uvicorn --workers N`, N processes serve requests and any one of them may answer
a scrape, so each writes its series to memory-mapped files in one directory
(PROMETHEUS_MULTIPROC_DIR) and the one that answers reads them all.

Who owns the directory:
- The operator, when PROMETHEUS_MULTIPROC_DIR is set: it must exist or be creatable,
  and be emptied between server starts (e.g. systemd's RuntimeDirectory=).
- Otherwise the server: each process of one server start (the uvicorn supervisor's
  pid and its start time name it) uses <tmp>/arv-metrics/<pid>-<start>/, made on
  first use; the directories of servers no longer running are removed then. The shared
  temporary directory is anyone's: <tmp>/arv-metrics is made private (0700), and one
  that is already there must be a directory of this user that no one else may write to
  (else the server refuses to start: another user could plant or read series there).

A process that stops marks itself dead (its pool gauges go); one that was killed is
marked dead by the next scrape. Counters and histograms of gone processes stay, so
totals never go down while the server runs.

This module must not import prometheus_client: the directory is chosen before it loads
(prometheus_client reads PROMETHEUS_MULTIPROC_DIR when its first series is made).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
SERVERS_DIR = Path(tempfile.gettempdir()) / "arv-metrics"

# The per-process files of the pool gauges (multiprocess_mode "liveall"): gauge_liveall_<pid>.db
_LIVE_GAUGE_FILE = re.compile(r"gauge_liveall_(\d+)\.db")
_SERVER_DIR = re.compile(r"(\d+)-(\d+)")
# PROMETHEUS_MULTIPROC_DIR as the operator set it, once a command took it out of the environment.
_operators_dir: str | None = None


def use_server_dir() -> Path:
    """This process's metrics directory (the operator's, or this server start's), made if
    missing and exported as PROMETHEUS_MULTIPROC_DIR. Call before prometheus_client loads."""
    if os.environ.get(ENV):
        path = Path(os.environ[ENV])
    else:
        private_servers_dir()
        remove_stopped_servers_dirs()
        path = SERVERS_DIR / server_start_name()
        os.environ[ENV] = str(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class UnsafeMetricsDirectory(RuntimeError):
    """The default metrics directory is there already, and not this user's alone."""


def private_servers_dir() -> None:
    """<tmp>/arv-metrics, made 0700 if missing; refused if someone else could write to it."""
    try:
        SERVERS_DIR.mkdir(mode=0o700)
    except FileExistsError:
        pass
    found = SERVERS_DIR.lstat()
    problem = None
    if not stat.S_ISDIR(found.st_mode):
        problem = "is not a directory (a symbolic link?)"
    elif found.st_uid != os.geteuid():
        problem = f"belongs to another user (uid {found.st_uid})"
    elif found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"may be written to by others (mode {stat.S_IMODE(found.st_mode):o})"
    if problem is not None:
        raise UnsafeMetricsDirectory(
            f"The metrics directory {SERVERS_DIR} {problem}. Remove it, or set {ENV} to a directory of this "
            "server's own."
        )


def leave_servers_dir() -> None:
    """For `manage.py`, before prometheus_client loads: a command keeps its own series in memory
    (a `migrate` is no server process), while dbstatus still finds the operator's directory."""
    global _operators_dir
    _operators_dir = os.environ.pop(ENV, None) or _operators_dir


def operators_dir() -> Path | None:
    """The directory the operator set (PROMETHEUS_MULTIPROC_DIR), if any."""
    configured = os.environ.get(ENV) or _operators_dir
    return Path(configured) if configured else None


def server_start_name() -> str:
    """<pid>-<start time> of the server: the uvicorn supervisor that spawned this process
    (--workers N), or this process itself."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None else os.getpid()
    return f"{pid}-{process_start_time(pid)}"


def process_start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot, Linux), so that a reused pid is not
    taken for the same server; None if it is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or no /proc here (then 0: "running, start unknown")
        return 0 if _running(pid) else None
    return int(stat.rpartition(")")[2].split()[19])


def running_servers_dirs() -> list[Path]:
    """The metrics directories of the servers running on this machine: the operator's, or
    each running server start's."""
    configured = operators_dir()
    if configured is not None:
        return [configured]
    return [path for path in sorted(SERVERS_DIR.glob("*-*")) if _server_running(path)]


def remove_stopped_servers_dirs() -> None:
    for path in SERVERS_DIR.glob("*-*"):
        if _SERVER_DIR.fullmatch(path.name) and not _server_running(path):
            shutil.rmtree(path, ignore_errors=True)


def dead_process_ids(path: Path) -> list[int]:
    """Processes whose pool gauges are still in path though they are gone (killed)."""
    pids = (int(m.group(1)) for m in map(_LIVE_GAUGE_FILE.fullmatch, os.listdir(path)) if m)
    return [pid for pid in pids if not _running(pid)]


def _server_running(path: Path) -> bool:
    match = _SERVER_DIR.fullmatch(path.name)
    if match is None:
        return False
    started = process_start_time(int(match.group(1)))
    return started is not None and started in (0, int(match.group(2)))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    # A killed worker stays a zombie until its supervisor reaps it: signalable, yet gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:  # no /proc here: signalable is all we know
        return True
    return state != "Z"

"""Every running server process's pools, read from the metrics files (for `manage.py dbstatus`):
the primary's figures, and each database's (replicas have pools of their own) under "pools"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.multiprocess import MultiProcessCollector

from arv.metrics.directory import dead_process_ids, running_servers_dirs

# Gauge (per process) -> key in the answer.
POOL_GAUGES = {
    "arv_db_pool_bound": "bound",
    "arv_db_pool_workers": "workers",
    "arv_db_pool_in_use": "in_use",
    "arv_db_pool_waiting": "waiting",
}
# Counter (all processes of a server, since it started) -> key in the answer.
POOL_COUNTERS = {
    "arv_db_pool_timeouts": "pool_timeouts",
    "arv_db_reconnects": "reconnects",
    "arv_db_connections_opened": "connections_opened",
}


def server_pools() -> list[dict[str, Any]]:
    """Per running server (metrics directory): its processes' pools and its pool counters."""
    return [server_pool(path) for path in running_servers_dirs() if path.is_dir()]


def server_pool(path: Path) -> dict[str, Any]:
    dead = {str(pid) for pid in dead_process_ids(path)}
    processes: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(POOL_COUNTERS.values(), 0)
    for metric in MultiProcessCollector(None, str(path)).collect():
        for sample in metric.samples:
            if metric.name in POOL_GAUGES and sample.labels.get("pid") not in dead:
                pid, database = sample.labels["pid"], sample.labels.get("database", "default")
                process = processes.setdefault(pid, {"pid": int(pid), "pools": {}})
                key, figure = POOL_GAUGES[metric.name], int(sample.value)
                process["pools"].setdefault(database, {})[key] = figure
                if database == "default":  # the primary's pool, as before replicas
                    process[key] = figure
            elif metric.name in POOL_COUNTERS and sample.name == metric.name + "_total":
                totals[POOL_COUNTERS[metric.name]] = int(sample.value)
    return {"metrics_dir": str(path), "processes": sorted(processes.values(), key=lambda p: p["pid"]), **totals}

"""Database ceiling: the detail endpoint's SQL, straight through psycopg in a loop.

The statements are captured from ARV itself (token_user + company_get inside one
transaction.atomic, as a detail request runs them) and replayed with the binding
and prepared statements ARV's settings give Django (server-side binding, psycopg
preparing a statement on its fifth run), one "request" being:

    SELECT 1                        -- CONN_HEALTH_CHECKS ping of a reused connection
    BEGIN; <token lookup>; <company with folders_count>; COMMIT

Usage (DATABASE_URL, DJANGO_SECRET_KEY set):

    .venv/bin/python bench/dbceiling.py --token T --min-id 2 --max-id 10001 \
        --connections 16 --processes 2 --warmup 1 --duration 3 --reps 3

Prints "WARMED" after the warm-up, then one line "BENCH_JSON {...}" per repetition
(the same shape as bench/lua/scenario.lua's), so bench/run.py reads both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arv.settings")

MARK = 987_654_321  # a company id no row has: marks the parameter to replace


def capture(token: str, company_id: int) -> list[tuple[str, tuple]]:
    import django

    django.setup()
    from django.db import connection, transaction

    from arv.auth.tokens import token_user
    from companies.selectors import company_get

    statements: list[tuple[str, tuple]] = []

    def wrapper(execute, sql, params, many, context):
        statements.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), transaction.atomic():
        user = token_user(token)
        assert user is not None, "the token is not valid in this database"
        try:
            company_get(user=user, company_id=company_id)
        except Exception:  # noqa: BLE001 - MARK matches no row: 404, the SQL is what matters
            pass
    connection.close()
    return statements


async def _client(dsn, options, statements, lo, hi, phases, results):
    import psycopg

    server_side = options.get("server_side_binding") is True
    conn = await psycopg.AsyncConnection.connect(
        dsn,
        autocommit=True,
        cursor_factory=psycopg.AsyncCursor if server_side else psycopg.AsyncClientCursor,
        prepare_threshold=options.get("prepare_threshold"),
    )
    try:
        for index, (start, end) in enumerate(phases):
            while time.monotonic() < start:
                await asyncio.sleep(0.001)
            count, latencies = 0, []
            while True:
                began = time.monotonic()
                if began >= end:
                    break
                company_id = random.randint(lo, hi)
                await conn.execute("SELECT 1")
                async with conn.transaction():
                    async with conn.cursor() as cursor:
                        for sql, params in statements:
                            await cursor.execute(sql, tuple(company_id if p == MARK else p for p in params))
                            await cursor.fetchall()
                done = time.monotonic()
                if done <= end:
                    count += 1
                    latencies.append(done - began)
            results[index][0] += count
            results[index][1].extend(latencies)
    finally:
        await conn.close()


def _process(dsn, options, statements, lo, hi, connections, phases, queue):
    results = [[0, []] for _ in phases]

    async def main():
        await asyncio.gather(*(_client(dsn, options, statements, lo, hi, phases, results) for _ in range(connections)))

    asyncio.run(main())
    queue.put(results)


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True)
    parser.add_argument("--min-id", type=int, required=True)
    parser.add_argument("--max-id", type=int, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    statements = capture(args.token, MARK)
    from django.conf import settings

    db = settings.DATABASES["default"]
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    if db.get("PASSWORD"):
        dsn += f" password={db['PASSWORD']}"

    processes = max(1, min(args.processes, args.connections))
    per_process = [
        args.connections // processes + (1 if i < args.connections % processes else 0) for i in range(processes)
    ]
    start = time.monotonic() + 0.5  # time for the processes to connect
    phases = [(start, start + args.warmup)]
    t = start + args.warmup
    for _ in range(args.reps):
        phases.append((t, t + args.duration))
        t += args.duration
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_process, args=(dsn, db["OPTIONS"], statements, args.min_id, args.max_id, n, phases, queue))
        for n in per_process
    ]
    for w in workers:
        w.start()
    time.sleep(max(0.0, phases[0][1] - time.monotonic()))
    print("WARMED", flush=True)
    collected = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    for index in range(1, len(phases)):
        count = sum(r[index][0] for r in collected)
        latencies = sorted(x for r in collected for x in r[index][1])
        us = [int(percentile(latencies, p) * 1e6) for p in (50, 90, 99)]
        summary = {
            "requests": count,
            "duration_us": int(args.duration * 1e6),
            "bytes": 0,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
            "latency_us": {
                "p50": us[0],
                "p90": us[1],
                "p99": us[2],
                "max": int((latencies[-1] if latencies else 0) * 1e6),
                "mean": round(sum(latencies) / len(latencies) * 1e6, 1) if latencies else 0.0,
            },
        }
        print("BENCH_JSON " + json.dumps(summary), flush=True)
    print("STATEMENTS " + json.dumps([s for s, _ in statements]), flush=True)


if __name__ == "__main__":
    main()

"""Seed the benchmark database: N companies with F folders each, on the seeded storage connection,
and, when given, a superuser for the admin scenario.

Run after `manage.py migrate` with DJANGO_SETTINGS_MODULE=arv.settings and DATABASE_URL set:

    .venv/bin/python bench/seed.py 10000 2 [ADMIN_USERNAME ADMIN_PASSWORD]

Rows go in with PostgreSQL's COPY (1,000,000 companies and 2,000,000 folders in a few minutes;
the database's triggers and indexes see them as they would any insert), newest last: created_at
rises with the id. Then ANALYZE. Prints one JSON line: {"companies": N, "min_id": ..., "max_id": ...}
(the seeded ids are contiguous).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arv.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from storage.models import StorageConnection  # noqa: E402

COMPANY_COLUMNS = (
    "name, slug, contact_email, storage_connection_id, storage_path, subscription_tier, storage_quota_gb,"
    " storage_used_bytes, projects_limit, is_active, is_default, metadata, created_at, updated_at"
)
FOLDER_COLUMNS = "company_id, name, path, folder_type, files_count, total_size_bytes, created_at, updated_at"


def seed(n: int, folders: int) -> dict[str, int]:
    storage = StorageConnection.objects.get(is_default=True)
    width = max(5, len(str(n)))  # "Bench Company 00042": a search for a number matches a handful
    start = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=n)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY
        with raw.copy(f"COPY companies_company ({COMPANY_COLUMNS}) FROM STDIN") as copy:
            for i in range(1, n + 1):
                at = start + dt.timedelta(milliseconds=i)
                number = f"{i:0{width}d}"
                copy.write_row(
                    (f"Bench Company {number}", f"bench-company-{number}", f"c{i}@bench.example.com", storage.pk,
                     f"/bench/{number}", "basic", 10, 0, 10, True, False, json.dumps({"seq": i}), at, at)
                )  # fmt: skip
        cursor.execute("SELECT min(id), max(id), count(*) FROM companies_company WHERE slug LIKE 'bench-company-%%'")
        min_id, max_id, count = cursor.fetchone()
        assert max_id - min_id + 1 == count == n, "seeded ids are not contiguous"
        with raw.copy(f"COPY storage_storagefolder ({FOLDER_COLUMNS}) FROM STDIN") as copy:
            for company_id in range(min_id, max_id + 1):
                at = start + dt.timedelta(milliseconds=company_id - min_id + 1)
                for k in range(1, folders + 1):
                    copy.write_row((company_id, f"folder {k}", f"/bench/{company_id}/f{k}", "custom", k, 0, at, at))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"companies": n, "folders_each": folders, "min_id": min_id, "max_id": max_id}


def create_admin(username: str, password: str) -> None:
    # create_superuser skips the password validators (createsuperuser's prompt runs them): a fixed bench password.
    get_user_model().objects.create_superuser(username, f"{username}@bench.example.com", password)


if __name__ == "__main__":
    started = time.monotonic()
    result = seed(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    if len(sys.argv) > 4:
        create_admin(sys.argv[3], sys.argv[4])
        result["admin"] = sys.argv[3]
    result["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(result))

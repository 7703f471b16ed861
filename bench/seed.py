"""Seed the benchmark database: N companies with F folders each, on the seeded storage connection,
and, when given, a superuser for the admin scenario.

Run after `manage.py migrate` with DJANGO_SETTINGS_MODULE=arv.settings and DATABASE_URL set:

    .venv/bin/python bench/seed.py 10000 2 [ADMIN_USERNAME ADMIN_PASSWORD]

Prints one JSON line: {"companies": N, "min_id": ..., "max_id": ...} (the seeded ids are contiguous).
"""

from __future__ import annotations

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

from companies.models import Company  # noqa: E402
from storage.models import StorageConnection, StorageFolder  # noqa: E402

BATCH = 2000


def seed(n: int, folders: int) -> dict[str, int]:
    storage = StorageConnection.objects.get(is_default=True)
    with transaction.atomic():
        companies = Company.objects.bulk_create(
            (
                Company(
                    name=f"Bench Company {i:05d}",
                    slug=f"bench-company-{i:05d}",
                    contact_email=f"c{i}@bench.example.com",
                    storage_connection=storage,
                    storage_path=f"bench/{i:05d}",
                    metadata={"seq": i},
                )
                for i in range(1, n + 1)
            ),
            batch_size=BATCH,
        )
        StorageFolder.objects.bulk_create(
            (
                StorageFolder(company_id=c.pk, name=f"folder {k}", path=f"bench/{c.pk}/f{k}", files_count=k)
                for c in companies
                for k in range(1, folders + 1)
            ),
            batch_size=BATCH,
        )
    ids = [c.pk for c in companies]
    assert ids == list(range(ids[0], ids[0] + n)), "seeded ids are not contiguous"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"companies": n, "folders_each": folders, "min_id": ids[0], "max_id": ids[-1]}


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

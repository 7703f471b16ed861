"""pytest plugin (-p testing.env): environment defaults for tests, set before Django loads."""

import getpass
import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "false")
# Small bounds make the connection tests fast; tests that need other values start their own server.
os.environ.setdefault("DB_POOL_SIZE", "4")
os.environ.setdefault("DB_MAX_OVERFLOW", "2")
os.environ.setdefault("DB_POOL_TIMEOUT", "5")
# Tests never read the operator's .env (bin/serve writes one): settings load this instead.
os.environ["ARV_ENV_FILE"] = os.devnull
# local_disk connections may point at the seeded root and at pytest's temporary
# directories (tmp_path, pytest's default base), not at the rest of /tmp.
os.environ.setdefault(
    "ARV_LOCAL_STORAGE_ROOTS",
    ",".join(
        [
            os.environ.get("ARV_LOCAL_STORAGE_ROOT", str(Path(__file__).resolve().parents[1] / "var" / "storage")),
            str(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"),
        ]
    ),
)
# The tests' storage servers (moto's S3, the slow and silent endpoints) listen on loopback,
# which a MinIO endpoint may only be in when allowed (tests of the refusal narrow it).
os.environ.setdefault("ARV_STORAGE_ALLOWED_NETWORKS", "127.0.0.0/8")

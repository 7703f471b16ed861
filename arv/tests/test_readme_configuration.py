"""Every environment variable ARV's code reads is in the README's Configuration table."""

from __future__ import annotations

import re

from testing.servers import PROJECT_DIR

SOURCES = ("arv", "companies", "storage", "bench")
# os.environ["X"], os.environ.get("X"), os.getenv("X"), and arv.db.config's env_bool/env_number("X").
READS = re.compile(r"""(?:environ\.get\(|environ\[|getenv\(|env_bool\(|env_number\()\s*["']([A-Z][A-Z0-9_]+)["']""")
# ${X:-default} and ${X} in the operator's scripts (bin/serve's HOST and PORT).
SCRIPT_READS = re.compile(r"\$\{([A-Z][A-Z0-9_]+)(?::?-[^}]*)?\}")


def _variables_read() -> set[str]:
    names: set[str] = set()
    for top in SOURCES:
        for path in (PROJECT_DIR / top).rglob("*.py"):
            if "tests" not in path.parts:
                names.update(READS.findall(path.read_text()))
    for script in (PROJECT_DIR / "bin").iterdir():
        names.update(SCRIPT_READS.findall(script.read_text()))
    return names


def _variables_documented() -> set[str]:
    readme = (PROJECT_DIR / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])}


def test_the_scan_finds_the_variables_it_should():
    assert {"DATABASE_URL", "DB_POOL_SIZE", "DJANGO_DEBUG", "ARV_ENV_FILE", "PORT"} <= _variables_read()


def test_every_variable_the_code_reads_is_in_the_configuration_table():
    missing = _variables_read() - _variables_documented()
    assert not missing, f"add to README.md's Configuration table: {sorted(missing)}"

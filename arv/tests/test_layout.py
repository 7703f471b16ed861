"""Dependencies point one way (README, "Architecture"): import-linter checks the contracts in
pyproject.toml ([tool.importlinter]) on every run of the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testing.servers import PROJECT_DIR

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_every_import_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "added_import", "broken_contract", "reported_import"),
    [
        (
            "storage/models.py",
            "from companies.access import companies_visible_to",
            "storage never imports companies BROKEN",
            "storage.models -> companies.access",
        ),
        (
            "arv/db/errors.py",
            "from arv.metrics.series import POOL_TIMEOUTS",
            "arv.metrics reads them) BROKEN",
            "arv.db.errors -> arv.metrics.series",
        ),
    ],
)
def test_a_broken_contract_fails(tmp_path, module, added_import, broken_contract, reported_import):
    """The contracts can fail: a copy of the project with one forbidden import added breaks
    the contract that forbids it (the apps' direction; arv.db below arv.metrics)."""
    for top in ("arv", "companies", "storage"):
        subprocess.run(["cp", "-r", str(PROJECT_DIR / top), str(tmp_path / top)], check=True)
    (tmp_path / "pyproject.toml").write_text((PROJECT_DIR / "pyproject.toml").read_text())
    (tmp_path / module).write_text((PROJECT_DIR / module).read_text() + f"\n{added_import}\n")
    result = lint_imports(cwd=tmp_path)
    assert result.returncode != 0
    assert broken_contract in " ".join(result.stdout.split())
    assert reported_import in result.stdout

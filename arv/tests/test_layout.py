"""Dependencies point one way (README, "Architecture"): import-linter checks the contracts in
pyproject.toml ([tool.importlinter]) on every run of the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_broken_contract_fails(tmp_path):
    """The contracts can fail: a copy of storage that imports companies breaks the apps' direction."""
    for top in ("arv", "companies", "storage"):
        subprocess.run(["cp", "-r", str(PROJECT_DIR / top), str(tmp_path / top)], check=True)
    (tmp_path / "pyproject.toml").write_text((PROJECT_DIR / "pyproject.toml").read_text())
    (tmp_path / "storage" / "models.py").write_text(
        (PROJECT_DIR / "storage" / "models.py").read_text() + "\nfrom companies.access import companies_visible_to\n"
    )
    result = lint_imports(cwd=tmp_path)
    assert result.returncode != 0
    assert "storage never imports companies BROKEN" in " ".join(result.stdout.split())
    assert "storage.models -> companies.access" in result.stdout

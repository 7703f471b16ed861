"""arv.db is plumbing at the bottom: it imports no metrics (the pool counts, arv.metrics reads
the counts), no app and no wiring. Read from the source, every import at any depth."""

from __future__ import annotations

import ast
from pathlib import Path

import arv.db

FORBIDDEN = ("arv.metrics", "arv.pipeline", "arv.api", "arv.urls", "arv.settings", "arv.asgi", "companies", "storage")


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def forbidden_imports(package: Path) -> list[str]:
    return sorted(
        f"{path.relative_to(package.parent)} imports {name}"
        for path in package.rglob("*.py")
        for name in imports_of(path)
        if any(name == prefix or name.startswith(prefix + ".") for prefix in FORBIDDEN)
    )


def test_arv_db_imports_no_metrics_app_or_wiring():
    assert forbidden_imports(Path(arv.db.__file__).parent) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    package = tmp_path / "db"
    package.mkdir()
    (package / "ok.py").write_text("import logging\nfrom arv.db.workers import get_pool\n")
    (package / "bad.py").write_text("def f():\n    from arv.metrics.series import POOL_TIMEOUTS\n")
    assert forbidden_imports(package) == ["db/bad.py imports arv.metrics.series"]

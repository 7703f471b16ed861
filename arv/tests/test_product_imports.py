"""The product (arv, companies, storage, tests aside) imports nothing only the tests install:
no module of a package that requirements-test.lock pins and requirements.lock does not
(pytest, httpx, boto3, moto, selenium, hypothesis, schemathesis, ...), and not the test
support package `testing`. bin/serve installs requirements.lock only, so such an import
would fail in production, or drag test code into it."""

from __future__ import annotations

import ast
import re
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.utils import canonicalize_name

from testing.servers import PROJECT_DIR

PRODUCT = ("arv", "companies", "storage")


def _pinned(lock: str) -> set[str]:
    text = (PROJECT_DIR / lock).read_text()
    return {canonicalize_name(name) for name in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)}


def test_only_modules() -> dict[str, str]:
    """Top-level module -> the test-only distribution that installs it (from this venv's metadata)."""
    test_only = _pinned("requirements-test.lock") - _pinned("requirements.lock")
    modules = {"testing": "ARV's test support package"}
    for module, distributions in packages_distributions().items():
        names = {canonicalize_name(distribution) for distribution in distributions}
        if names and names <= test_only:
            modules[module] = ", ".join(sorted(names))
    return modules


test_only_modules.__test__ = False  # a helper, not a test


def product_modules() -> list[Path]:
    return [
        path
        for top in PRODUCT
        for path in sorted((PROJECT_DIR / top).rglob("*.py"))
        if "tests" not in path.relative_to(PROJECT_DIR).parts
    ]


def imported_top_levels(path: Path) -> set[str]:
    """Every top-level module a file imports, at any depth (functions, TYPE_CHECKING blocks too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_test_only_modules_are_found():
    """The scan knows the packages the issue names (else the next test could not fail)."""
    assert {"pytest", "httpx", "boto3", "moto", "selenium", "hypothesis", "schemathesis", "testing"} <= set(
        test_only_modules()
    )
    assert not {"django", "ninja", "psycopg", "uvicorn", "minio", "urllib3"} & set(test_only_modules())


def test_the_scan_sees_imports_at_every_depth(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import a.b\nfrom c import d\nfrom . import e\ndef f():\n    import g\n")
    assert imported_top_levels(module) == {"a", "c", "g"}


def test_no_product_module_imports_a_test_only_package():
    forbidden = test_only_modules()
    assert product_modules()
    found = [
        f"{path.relative_to(PROJECT_DIR)} imports {name} ({forbidden[name]})"
        for path in product_modules()
        for name in sorted(imported_top_levels(path) & forbidden.keys())
    ]
    assert not found, "\n".join(found)

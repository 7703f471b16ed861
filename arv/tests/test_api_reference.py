"""The API reference ships with the project (docs/API.md): served at /api/reference, linked from
/api/docs, and naming every operation the OpenAPI schema has."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db(transaction=True)

REFERENCE = settings.BASE_DIR / "docs" / "API.md"


def _operations(text: str) -> set[str]:
    """`METHOD /api/path` pairs, path parameters written as {}."""
    found = re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/api/[\w/{}]+)", text)
    return {f"{method} {re.sub(r'{[^}]*}', '{}', path)}" for method, path in found}


def test_the_reference_is_served_as_markdown(anonymous):
    answer = anonymous.get("/api/reference")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert answer.content == REFERENCE.read_bytes()


def test_the_interactive_docs_link_to_the_reference(anonymous):
    description = anonymous.get("/api/openapi.json").json()["info"]["description"]
    assert "[API reference](reference)" in description  # /api/docs -> /api/reference, under any --root-path
    assert "/api/reference" not in anonymous.get("/api/openapi.json").json()["paths"]


def test_the_reference_documents_every_operation(anonymous):
    schema = anonymous.get("/api/openapi.json").json()
    operations = {
        f"{method.upper()} {re.sub(r'{[^}]*}', '{}', path)}"
        for path, item in schema["paths"].items()
        for method in item
    }
    assert operations <= _operations(REFERENCE.read_text())

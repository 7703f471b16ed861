"""Errors a service raises for a client's request; arv.api turns each into its JSON answer."""

from __future__ import annotations


class Conflict(Exception):
    """409: a unique value is taken, or dependents block a delete."""


class InvalidInput(Exception):
    """422 for a well-formed value the domain rejects (e.g. an inactive storage connection)."""

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.kind = kind

    def as_detail(self) -> list[dict[str, object]]:
        return [{"loc": ["body", self.field], "msg": self.message, "type": self.kind}]

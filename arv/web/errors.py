"""Errors a service raises for a client's request; arv.api turns each into its JSON answer."""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


class Conflict(Exception):
    """409: a unique value is taken, or dependents block a delete."""


class InvalidInput(ValidationError):
    """422 for a well-formed value the domain rejects (e.g. an inactive storage connection).
    A ValidationError of that field, so that callers outside the API (the shell, commands)
    catch one kind of error for every refused value."""

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__({field: [ValidationError(message, code=kind)]})
        self.field = field
        self.message = message
        self.kind = kind

    def as_detail(self) -> list[dict[str, object]]:
        return [{"loc": ["body", self.field], "msg": self.message, "type": self.kind}]


def validation_detail(exc: ValidationError) -> list[dict[str, object]]:
    """A model's ValidationError (services validate as the admin does) as a 422's detail, in the
    shape of InvalidInput's and the schemas' answers."""
    errors = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.error_list}
    return [
        {"loc": ["body"] if field == NON_FIELD_ERRORS else ["body", field], "msg": message, "type": "value_error"}
        for field, field_errors in errors.items()
        for error in field_errors
        for message in error.messages
    ]

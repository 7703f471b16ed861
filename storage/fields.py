"""Model fields that keep their rules in the model layer, so the API, the admin and the shell
all get them: canonical storage paths, NFKC names, encrypted credentials, storable JSON objects."""

from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from arv.db.storable import postgres_storable
from storage import credentials
from storage.paths import canonical_path


def nfkc(value: str) -> str:
    """Names that look alike are one name: "Йод Ёлка" typed as NFC or NFD, "Ｆｕｌｌ" and "Full"."""
    return unicodedata.normalize("NFKC", value)


def storable_json_object(value: Any) -> None:
    """Model validator: a JSON object the database can store and the API can answer with."""
    if isinstance(value, credentials.EncryptedCredentials):  # stored already, left unchanged
        return
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.", code="not_an_object")
    try:
        postgres_storable(value)
    except ValueError as exc:
        raise ValidationError(f"Cannot be stored: {exc}.", code="unstorable") from None


class _CanonicalPathFormField(forms.CharField):
    def __init__(self, *, allow_root: bool, **kwargs: Any) -> None:
        self.allow_root = allow_root
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        try:
            return canonical_path(value, allow_root=self.allow_root)
        except ValueError as exc:
            raise ValidationError(f"Path {exc}.", code="invalid") from None


class CanonicalPathField(models.CharField):
    """A storage path, stored only in its canonical form (storage.paths): forms and model
    validation rewrite it (or refuse it), and so does every write through the ORM."""

    def __init__(self, *args: Any, allow_root: bool = True, **kwargs: Any) -> None:
        self.allow_root = allow_root
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if not self.allow_root:
            kwargs["allow_root"] = False
        return name, path, args, kwargs

    def _canonical(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return canonical_path(value, allow_root=self.allow_root)
        except ValueError as exc:
            raise ValidationError(f"Path {exc}.", code="invalid") from None

    def to_python(self, value: Any) -> Any:  # CharField.get_prep_value calls it too: every ORM write
        return self._canonical(super().to_python(value))

    def formfield(self, **kwargs: Any) -> forms.Field:
        return super().formfield(**{"form_class": _CanonicalPathFormField, "allow_root": self.allow_root, **kwargs})


class _NameFormField(forms.CharField):
    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return nfkc(value) if isinstance(value, str) else value


class NameField(models.CharField):
    """A name stored NFKC-normalised (forms, model validation and every ORM write), so a
    unique rule on Lower(name) compares names as a reader does."""

    def to_python(self, value: Any) -> Any:  # CharField.get_prep_value calls it too: every ORM write
        value = super().to_python(value)
        return nfkc(value) if isinstance(value, str) else value

    def formfield(self, **kwargs: Any) -> forms.Field:
        return super().formfield(**{"form_class": _NameFormField, **kwargs})


class EncryptedJSONField(models.TextField):
    """A JSON object that the database sees only as Fernet ciphertext (storage.credentials).

    Set it to a dict; read from the database it is an EncryptedCredentials handle, decrypted
    only where the credentials are used (`.decrypted()`), so nothing else depends on the keys.
    Nothing can filter, search or order on it: every lookup but isnull is refused, so the
    ciphertext cannot be probed either."""

    def from_db_value(self, value: str | None, expression, connection) -> credentials.EncryptedCredentials | None:
        return None if value is None else credentials.EncryptedCredentials(value)

    def to_python(self, value: Any) -> Any:
        # The string form of this field (value_to_string, e.g. dumpdata) is its ciphertext.
        return credentials.EncryptedCredentials(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, credentials.EncryptedCredentials):  # unchanged: the same ciphertext back
            return value.token
        if not isinstance(value, dict):  # a JSON text would be stored as one string, not an object
            raise TypeError(f"{self.name} must be a dict, not {type(value).__name__}")
        return credentials.encrypt(value)

    def value_to_string(self, obj: models.Model) -> str | None:
        return self.get_prep_value(self.value_from_object(obj))

    def get_lookup(self, lookup_name: str):
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, lookup_name: str):
        return None

    def formfield(self, **kwargs: Any) -> forms.Field:
        return forms.JSONField(**{"required": not self.blank, **kwargs})

"""Model validation for services: the same rules the admin applies, for every caller (the API,
`manage.py shell`, management commands)."""

from __future__ import annotations

from collections.abc import Collection

from django.db import models


def full_clean(
    instance: models.Model,
    *,
    fields: Collection[str] | None = None,
    exclude: Collection[str] = (),
    model_clean: bool = True,
) -> None:
    """The model's field validators and clean(), as a ModelForm runs them; ValidationError if
    any refuses.

    fields: validate only these (by name or attname, e.g. an update's), as a form validates only
    its own fields: a value stored before a rule existed does not block changing another one.
    Uniqueness and check constraints are left to the database, which enforces them for every
    writer (and races cannot slip past it): asking first would cost a query per constraint on
    every write. Callers exclude foreign keys they have already looked up, for the same reason,
    and skip clean() (model_clean=False) only when they apply its rule themselves.
    """
    skipped = set(exclude)
    if fields is not None:
        skipped |= {f.name for f in instance._meta.concrete_fields if not {f.name, f.attname} & set(fields)}
    if not model_clean:
        instance.clean_fields(exclude=sorted(skipped))
        return
    instance.full_clean(exclude=sorted(skipped), validate_unique=False, validate_constraints=False)

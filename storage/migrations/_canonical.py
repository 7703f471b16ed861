"""Rewrites existing rows into the canonical forms the models now keep (names NFKC, storage
paths canonical), for the data migrations of both apps.

Nothing is rewritten unless every row can be: a path with a `..` segment, a backslash or a
control character has no canonical form, and two rows that would become equal (two folders
of one company at `a/b` and `/a/b/`, two names equal ignoring case) cannot both stay. Either
way the migration stops and names the rows, for the operator to fix (merge, rename, delete)
before migrating again: guessing would point a folder at other files, or rename a company.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from storage.fields import nfkc
from storage.paths import canonical_path


class CannotCanonicalize(RuntimeError):
    pass


def rewrite(
    model,
    field: str,
    canonical: Callable[[object], str | None],
    *,
    unique_within: Iterable[str] | None = None,
    ignore_case: bool = False,
    using: str,
) -> None:
    """Set each row's `field` to canonical(row); refuse (listing the rows) if a value has no
    canonical form or if two rows of the same `unique_within` group would be equal."""
    problems: list[str] = []
    changes: dict[int, str | None] = {}
    groups: dict[tuple, list[int]] = defaultdict(list)
    label = f"{model._meta.db_table}.{field}"
    for row in model.objects.using(using).order_by("pk"):
        value = getattr(row, field)
        try:
            new = canonical(row)
        except ValueError as exc:
            problems.append(f"{label} of row {row.pk} ({value!r}) {exc}")
            continue
        if new != value:
            changes[row.pk] = new
        if unique_within is not None and new is not None:
            key = new.lower() if ignore_case else new
            groups[(*(getattr(row, f) for f in unique_within), key)].append(row.pk)
    for key, pks in groups.items():
        if len(pks) > 1:
            problems.append(f"{label}: rows {', '.join(map(str, pks))} would all become {key[-1]!r}")
    if problems:
        raise CannotCanonicalize(
            "Some rows cannot take the canonical form; fix them and run migrate again:\n  " + "\n  ".join(problems)
        )
    for pk, new in changes.items():
        model.objects.using(using).filter(pk=pk).update(**{field: new})


def name_of(field: str) -> Callable[[object], str]:
    return lambda row: nfkc(getattr(row, field))


def path_of(field: str, *, allow_root: bool = True) -> Callable[[object], str | None]:
    def canonical(row) -> str | None:
        value = getattr(row, field)
        return None if value is None else canonical_path(value, allow_root=allow_root)

    return canonical

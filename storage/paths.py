"""Paths inside a company's or a connection's storage, in one canonical form.

`/`-separated, a leading `/`, no empty or `.` segments, no trailing `/`: `a//b/`, `./a/b`
and `/a/b` are all `/a/b`, so the database's unique rules see them as one path. A `..`
segment, a backslash or a control character could name a place outside the storage (or
confuse whatever reads the path later) and is refused, never rewritten.
"""

from __future__ import annotations

import re

from django.db.models import Q

ROOT = "/"

# C0 and C1 control characters and DEL (NUL included). The same class is written for the
# database's regular expressions below: PostgreSQL's and Python's (SQLite's REGEXP) agree on it.
_CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")


def reject_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def canonical_path(value: str, *, allow_root: bool = True) -> str:
    """The canonical form of a storage path; ValueError (a message for the client) if it has none."""
    reject_control_characters(value)
    if "\\" in value:
        raise ValueError("must not contain a backslash: segments are separated by '/'")
    segments = [segment for segment in value.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise ValueError("must not contain a '..' segment")
    if not segments and not allow_root:
        raise ValueError("must name a folder below the root, not the root itself")
    return ROOT + "/".join(segments)


# The same rules as database CHECK constraints (PostgreSQL `~`, SQLite's REGEXP): what
# reaches a table without canonical_path (raw SQL) still cannot break them. Written with
# escapes only (no literal control characters in the SQL).
_DB_CONTROL_CLASS = r"\x01-\x1f\x7f-\x9f"  # PostgreSQL text cannot hold NUL at all
_SEGMENTS = rf"(/[^/\\{_DB_CONTROL_CLASS}]+)+"
_DOT_SEGMENT = r"/\.\.?(/|$)"


def canonical_path_q(field: str, *, allow_root: bool = True) -> Q:
    shape = f"^{_SEGMENTS}$" if not allow_root else f"^(/|{_SEGMENTS})$"
    return Q(**{f"{field}__regex": shape}) & ~Q(**{f"{field}__regex": _DOT_SEGMENT})


def no_control_characters_q(field: str) -> Q:
    return ~Q(**{f"{field}__regex": f"[{_DB_CONTROL_CLASS}]"})

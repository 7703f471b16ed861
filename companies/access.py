"""Who may see and change which company (API.md, "Who may do what")."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from companies.models import Company

# What a member may change on its own company; the rest is the operator's (staff) business.
# Not the name: a rename that collides with another company's name must fail, and that
# failure would tell a member which names other companies have (issue 18, item 10).
MEMBER_WRITABLE_FIELDS = frozenset({"contact_email", "contact_phone", "telegram_chat_id", "notes", "metadata"})


def companies_visible_to(user: AbstractBaseUser, companies: QuerySet[Company] | None = None) -> QuerySet[Company]:
    """Staff see every company; a member sees only its own (others are 404, not 403)."""
    if companies is None:
        companies = Company.objects.all()
    if user.is_staff:
        return companies
    return companies.filter(memberships__user=user)


def require_member_writable(user: AbstractBaseUser, fields: set[str]) -> None:
    if user.is_staff:
        return
    forbidden = sorted(fields - MEMBER_WRITABLE_FIELDS)
    if forbidden:
        raise PermissionDenied(f"Only staff users may change: {', '.join(forbidden)}.")

"""Who may see and change which company, and the storage behind it (API.md, "Who may do what").

Two kinds of caller:
- a bearer token's user: staff may do everything; any other user is a member of (at most) one
  company, which it may read and partly change (MEMBER_WRITABLE_FIELDS);
- the admin's session cookie (arv.auth.callers): an operator, who gets exactly what Django's
  model permissions give it, as in the admin: `view_` (or `change_`) to read, `add_`,
  `change_`, `delete_` to write, per model (Company, StorageConnection, StorageFolder); a
  connection check writes a probe and stores its outcome, so it needs `change_storageconnection`.
  Superusers hold every permission. Memberships play no part for a session caller.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from arv.auth.callers import by_session
from arv.auth.permissions import require
from companies.models import Company

# What a member may change on its own company; the rest is the operator's (staff) business.
# Not the name: a rename that collides with another company's name must fail, and that
# failure would tell a member which names other companies have (issue 18, item 10).
MEMBER_WRITABLE_FIELDS = frozenset({"contact_email", "contact_phone", "telegram_chat_id", "notes", "metadata"})


def sees_every_company(user: AbstractBaseUser) -> bool:
    """True for staff and for a session allowed to view companies; False for a member. A
    session without that permission may not read companies at all (PermissionDenied)."""
    if by_session(user):
        require(user, "view", Company)
        return True
    return user.is_staff


def companies_visible_to(user: AbstractBaseUser, companies: QuerySet[Company] | None = None) -> QuerySet[Company]:
    """Staff see every company; a member sees only its own (others are 404, not 403)."""
    if companies is None:
        companies = Company.objects.all()
    if sees_every_company(user):
        return companies
    return companies.filter(memberships__user=user)


def require_member_writable(user: AbstractBaseUser, fields: set[str]) -> None:
    if by_session(user):
        require(user, "change", Company)
        return
    if user.is_staff:
        return
    forbidden = sorted(fields - MEMBER_WRITABLE_FIELDS)
    if forbidden:
        raise PermissionDenied(f"Only staff users may change: {', '.join(forbidden)}.")

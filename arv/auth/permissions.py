"""Permission rules that belong to no app: the operator's actions, for either kind of caller.

A bearer token's user is staff (everything) or not (a member: its company's rules, in
companies.access). The admin's session cookie (arv.auth.callers) is an operator, who gets
exactly what Django's model permissions give it, as in the admin: `view_` (or `change_`)
to read, `add_`, `change_`, `delete_` to write, per model. A connection check writes a
probe and stores its outcome, so it needs `change_storageconnection`. Superusers hold
every permission.
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model

from arv.auth.callers import by_session

Action = Literal["view", "add", "change", "delete"]


def require(user: AbstractBaseUser, action: Action, model: type[Model]) -> None:
    """An operator's action on `model`: staff for a bearer token, the permission for a session."""
    if not by_session(user):
        if not user.is_staff:
            raise PermissionDenied("Only staff users may do this.")
    elif not _has_permission(user, action, model):
        raise PermissionDenied(f"You do not have permission to {action} {model._meta.verbose_name_plural}.")


def require_session(user: AbstractBaseUser, action: Action, model: type[Model]) -> None:
    """A session caller's permission for what a member may do too (a folder of a company it sees)."""
    if by_session(user):
        require(user, action, model)


def _has_permission(user: AbstractBaseUser, action: Action, model: type[Model]) -> bool:
    def permission(name: str) -> str:
        return f"{model._meta.app_label}.{name}_{model._meta.model_name}"

    if action == "view":  # as in the admin: who may change may view
        return user.has_perm(permission("view")) or user.has_perm(permission("change"))
    return user.has_perm(permission(action))

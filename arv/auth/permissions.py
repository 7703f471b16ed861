"""Permission rules that belong to no app."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied


def require_staff(user: AbstractBaseUser) -> None:
    if not user.is_staff:
        raise PermissionDenied("Only staff users may do this.")

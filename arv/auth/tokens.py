"""Issuing, checking and revoking API tokens.

A token reads `arv_<key id>_<secret>`. The key id finds the row; the secret is
compared with the stored SHA-256 hash in constant time, so neither a database
dump nor response timing gives a usable token away.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from arv.auth.models import ApiToken
from arv.db.queries import CompiledQuery
from arv.db.validation import full_clean

PREFIX = "arv"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic(savepoint=False)  # joins the caller's transaction (a request's, a command's)
def token_issue(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for user; returns the row and the only copy of the token itself.
    ValidationError (nothing written) for a name the model refuses (too long)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    token = ApiToken(key_id=key_id, secret_hash=_hash(secret), user=user, name=name)
    full_clean(token, exclude=["user"])  # the caller holds the user
    token.save(force_insert=True)
    return token, f"{PREFIX}_{key_id}_{secret}"


def token_user(raw: str) -> AbstractBaseUser | None:
    """The active user a token belongs to, or None for anything else."""
    key_id, secret = _parts(raw)
    return _owner(_token_owner.run(key_id=key_id), secret) if key_id else None


async def token_user_read(raw: str, read: Callable[..., Awaitable[list[Any]]]) -> AbstractBaseUser | None:
    """token_user, its row read with `await read(query, **values)` (on the event loop: arv.db.on_loop)."""
    key_id, secret = _parts(raw)
    return _owner(await read(_token_owner, key_id=key_id), secret) if key_id else None


def _parts(raw: str) -> tuple[str, str]:
    """(key id, secret) of a well-formed token, else ("", "")."""
    prefix, _, rest = raw.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != 16 or not secret or "\x00" in raw:
        return "", ""
    return key_id, secret


def _owner(found: list[Any], secret: str) -> AbstractBaseUser | None:
    if not found or not hmac.compare_digest(found[0].token_secret_hash, _hash(secret)):
        return None
    return found[0]


def _token_owner_query(key_id: str) -> QuerySet[AbstractBaseUser]:
    return (
        get_user_model()
        .objects.filter(api_tokens__key_id=key_id, api_tokens__revoked_at__isnull=True, is_active=True)
        .annotate(token_secret_hash=F("api_tokens__secret_hash"))
    )


# Every API request runs this: compiled once (arv.db.queries).
_token_owner = CompiledQuery(_token_owner_query, key_id=str)


@transaction.atomic(savepoint=False)
def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])

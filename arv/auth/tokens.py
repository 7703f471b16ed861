"""Issuing, checking and revoking API tokens.

A token reads `arv_<key id>_<secret>`. The key id finds the row; the secret is
compared with the stored SHA-256 hash in constant time, so neither a database
dump nor response timing gives a usable token away.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from arv.auth.models import ApiToken

PREFIX = "arv"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_issue(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for user; returns the row and the only copy of the token itself."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(key_id=key_id, secret_hash=_hash(secret), user=user, name=name)
    return token, f"{PREFIX}_{key_id}_{secret}"


def token_user(raw: str) -> AbstractBaseUser | None:
    """The active user a token belongs to, or None for anything else."""
    prefix, _, rest = raw.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != 16 or not secret or "\x00" in raw:
        return None
    user = next(iter(get_user_model().objects.raw(_token_user_sql(), [key_id])), None)
    if user is None or not hmac.compare_digest(user.token_secret_hash, _hash(secret)):
        return None
    return user


@functools.cache
def _token_user_sql() -> str:
    # Every API request runs this: plain SQL skips the ORM's query compilation,
    # which measured about half the lookup's CPU time (bench/). Same rows as
    # ApiToken.objects.filter(key_id=..., revoked_at__isnull=True, user__is_active=True).
    qn = connection.ops.quote_name
    user = get_user_model()._meta
    token = ApiToken._meta
    return (
        f"SELECT u.*, t.{qn('secret_hash')} AS token_secret_hash"
        f" FROM {qn(token.db_table)} t JOIN {qn(user.db_table)} u ON u.{qn(user.pk.column)} = t.{qn('user_id')}"
        f" WHERE t.{qn('key_id')} = %s AND t.{qn('revoked_at')} IS NULL AND u.{qn('is_active')}"
    )


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])

"""Read-your-writes over HTTP: the WAL position a client is given, and sends back (API.md).

An answer to a request that wrote (with replicas configured) carries
`ARV-Read-After: <position>`, the position of its commit (arv.db.replicas). A
client that sends the header back on its later requests reads nothing older than
its own write. A browser session gets the same through a signed cookie, which the
browser sends back by itself (the admin's session on the API). The later of the two
counts. Signed, so a client cannot make a replica look usable to someone else;
a client that invents a header only sends its own reads to the primary.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from arv.db.replicas import lsn_text, parse_lsn

HEADER = "ARV-Read-After"
COOKIE = "arv_read_after"
COOKIE_SALT = "arv.db.read_after"
# Long past any lag a usable replica may have (DB_REPLICA_MAX_LAG): then every replica has it.
COOKIE_SECONDS = 3600


class BadPosition(ValueError):
    """The client sent an ARV-Read-After header that is not a WAL position."""


def requested_position(request: HttpRequest) -> int | None:
    """The latest position the client sent back (header or cookie), or None."""
    positions = []
    header = request.headers.get(HEADER)
    if header is not None:
        position = parse_lsn(header)
        if position is None:
            raise BadPosition(f"{HEADER} must be a WAL position such as 0/16B3748, as an earlier answer gave it")
        positions.append(position)
    if COOKIE in request.COOKIES:
        signed = request.get_signed_cookie(COOKIE, default=None, salt=COOKIE_SALT, max_age=COOKIE_SECONDS)
        position = parse_lsn(signed) if signed else None
        if position is not None:  # a stale or forged cookie is no position at all
            positions.append(position)
    return max(positions, default=None)


def give_position(response: HttpResponseBase, request: HttpRequest | None, position: int, *, browser: bool) -> None:
    """The commit's position on the answer: the header, and for a browser session the cookie."""
    response[HEADER] = lsn_text(position)
    if browser or (request is not None and settings.SESSION_COOKIE_NAME in request.COOKIES):
        response.set_signed_cookie(
            COOKIE,
            lsn_text(position),
            salt=COOKIE_SALT,
            max_age=COOKIE_SECONDS,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )

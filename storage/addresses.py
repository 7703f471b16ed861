"""Which addresses a storage check may connect to (MinIO endpoints: anyone with staff rights
may name one, so it must not reach what only this server can reach). A rule of the model
(StorageConnection.clean), of the services and of the MinIO check alike, so it lives outside
storage.providers (models import no provider code).

By default only public addresses: never loopback, private, shared (CGNAT), link-local,
multicast, unspecified or reserved ones, in IPv4 or IPv6, nor an IPv6 form that carries such
an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64). ARV_STORAGE_ALLOWED_NETWORKS
(CIDRs) opens others. A name is resolved once and every address it resolves to must be
allowed; the connection is then made to the address checked, never to a second lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(Exception):
    """An endpoint that resolves to an address this server does not connect to."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"{host} resolves to an address this server does not connect to (loopback, private, link-local"
            " and other non-public addresses are refused unless ARV_STORAGE_ALLOWED_NETWORKS allows them)."
        )


class Unresolvable(Exception):
    """A name that does not resolve (now)."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and routes to, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if address in NAT64 or int(address) >> 32 == 0:  # NAT64, or IPv4-compatible (::a.b.c.d)
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_loopback or address.is_unspecified:  # ::1 and :: before the IPv4-compatible rule
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def is_allowed(address: IPAddress) -> bool:
    """A public address, or one inside ARV_STORAGE_ALLOWED_NETWORKS."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        mapped: IPAddress = address.ipv4_mapped
        if any(mapped in network for network in settings.STORAGE_ALLOWED_NETWORKS):
            return True
    if any(address in network for network in settings.STORAGE_ALLOWED_NETWORKS):
        return True
    return is_public(address)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal is itself), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(host) from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolvable(host)
    return addresses


def allowed_address(host: str, port: int) -> IPAddress:
    """The address to connect to for host:port, resolved once; RefusedAddress if any address
    it resolves to is not allowed (a name that answers with one public and one private
    address is refused: either could be used)."""
    addresses = resolve(host, port)
    if not all(is_allowed(address) for address in addresses):
        raise RefusedAddress(host)
    return addresses[0]


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, int]:
    """("host", port) of a MinIO endpoint "host[:port]" (ValueError if it is not one)."""
    parts = urlsplit(f"//{endpoint}")
    if not parts.hostname or parts.path or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{endpoint!r} is not host:port")
    return parts.hostname, parts.port or (443 if secure else 80)


def endpoint_refusal(endpoint: object, secure: bool = True) -> str | None:
    """Why a MinIO endpoint may not be stored (None if it may): it resolves to an address
    that is not allowed. One that does not resolve now, or is malformed, is left to the check."""
    if not isinstance(endpoint, str):
        return None
    try:
        allowed_address(*split_endpoint(endpoint, secure))
    except RefusedAddress as exc:
        return str(exc)
    except (ValueError, Unresolvable):
        return None
    return None


def secure_flag(value: Any) -> bool:
    """A MinIO `secure` credential as a bool ("false", "0", "no", "off" and "" are false)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


def minio_endpoint_refusal(credentials: dict[str, Any]) -> str | None:
    """Why these MinIO credentials' endpoint may not be stored (None: it may, or the check will
    say what is wrong with it)."""
    return endpoint_refusal(credentials.get("endpoint"), secure_flag(credentials.get("secure", True)))

"""Which addresses a MinIO endpoint may resolve to (storage.addresses): decided
before any connection, so these tests send no traffic anywhere."""

from __future__ import annotations

import ipaddress

import pytest

from storage.addresses import RefusedAddress, allowed_address, endpoint_refusal, is_allowed

REFUSED = [
    "127.0.0.1",  # loopback
    "127.255.0.9",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared address space (CGNAT)
    "169.254.169.254",  # link-local: cloud metadata
    "0.0.0.0",  # unspecified
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",  # IPv6 loopback
    "::",  # unspecified
    "fe80::1",  # link-local
    "fc00::1",  # unique local
    "fd12:3456::1",
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated) loopback
    "::10.0.0.1",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    "2001:db8::1",  # documentation
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:800::200e"]


@pytest.fixture
def public_only(settings):
    settings.STORAGE_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused_by_default(public_only, address):
    assert not is_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(public_only, address):
    assert is_allowed(ipaddress.ip_address(address))


def test_allowed_networks_open_others_and_only_those(settings):
    settings.STORAGE_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00::/8")]
    for address in ["10.20.3.4", "::ffff:10.20.3.4", "fd00::5"]:
        assert is_allowed(ipaddress.ip_address(address)), address
    for address in ["10.21.0.1", "127.0.0.1", "::1", "fe80::1"]:
        assert not is_allowed(ipaddress.ip_address(address)), address


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "0.0.0.0", "169.254.169.254", "10.0.0.1"])
def test_names_and_literals_are_checked_after_resolution(public_only, host):
    with pytest.raises(RefusedAddress, match="does not connect to"):
        allowed_address(host, 9000)


@pytest.mark.parametrize(
    "endpoint",
    ["localhost:9000", "127.0.0.1:9000", "[::1]:9000", "[::ffff:127.0.0.1]:9000", "169.254.169.254", "10.0.0.1:80"],
)
def test_an_endpoint_that_resolves_to_a_refused_address_says_why(public_only, endpoint):
    assert "ARV_STORAGE_ALLOWED_NETWORKS" in endpoint_refusal(endpoint)


def test_endpoints_that_are_allowed_or_left_to_the_check(public_only, settings):
    assert endpoint_refusal("8.8.8.8:443") is None
    assert endpoint_refusal("no-such-host.invalid:9000") is None  # does not resolve: the check says so
    assert endpoint_refusal("http://10.0.0.1/x") is None  # not host:port: the check says so
    settings.STORAGE_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    assert endpoint_refusal("127.0.0.1:9000") is None

"""inet and cidr <-> ipaddress (pg_codecs._network).

On the wire (inet_send): family (2 = IPv4, 3 = IPv6), netmask bits, is_cidr
flag, address length, address bytes.
"""

from __future__ import annotations

import random
import struct
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

import pytest

from pg_codecs import _network
from pg_codecs.errors import DecodeError


def enc(typename: str, value: object) -> bytes:
    return _network._encode(typename, value)


def dec(typename: str, data: bytes) -> object:
    return _network._decode(typename, data)


def prefixed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


V4_HOST = bytes.fromhex("02200004c0a80001")                 # 192.168.0.1/32
V4_IFACE = bytes.fromhex("02180004c0a80001")                # 192.168.0.1/24
V4_NET = bytes.fromhex("020801040a000000")                  # 10.0.0.0/8, cidr
V6_HOST = bytes.fromhex("03800010") + bytes(15) + b"\x01"   # ::1/128
V6_NET = bytes.fromhex("03200110") + bytes.fromhex("20010db8") + bytes(12)  # 2001:db8::/32


def test_inet_golden() -> None:
    assert enc("inet", IPv4Address("192.168.0.1")) == prefixed(V4_HOST)
    assert enc("inet", IPv4Interface("192.168.0.1/24")) == prefixed(V4_IFACE)
    assert enc("inet", IPv6Address("::1")) == prefixed(V6_HOST)
    assert dec("inet", V4_HOST) == IPv4Address("192.168.0.1")
    assert type(dec("inet", V4_HOST)) is IPv4Address
    assert dec("inet", V4_IFACE) == IPv4Interface("192.168.0.1/24")
    assert type(dec("inet", V4_IFACE)) is IPv4Interface
    assert type(dec("inet", V6_HOST)) is IPv6Address


def test_cidr_golden() -> None:
    assert enc("cidr", IPv4Network("10.0.0.0/8")) == prefixed(V4_NET)
    assert enc("cidr", IPv6Network("2001:db8::/32")) == prefixed(V6_NET)
    assert dec("cidr", V4_NET) == IPv4Network("10.0.0.0/8")
    assert type(dec("cidr", V6_NET)) is IPv6Network
    # A full-length cidr stays a network.
    assert dec("cidr", bytes.fromhex("02200104c0a80001")) == IPv4Network("192.168.0.1/32")


def test_inet_accepts_str_int_and_networks() -> None:
    assert enc("inet", "192.168.0.1") == prefixed(V4_HOST)
    assert enc("inet", "192.168.0.1/24") == prefixed(V4_IFACE)
    assert enc("inet", 0xC0A80001) == prefixed(V4_HOST)
    assert enc("inet", bytes.fromhex("c0a80001")) == prefixed(V4_HOST)
    # A network is its network address with the netmask, like the server's cast.
    assert enc("inet", IPv4Network("10.0.0.0/8")) == prefixed(bytes.fromhex("020800040a000000"))


def test_cidr_accepts_str_and_addresses() -> None:
    assert enc("cidr", "10.0.0.0/8") == prefixed(V4_NET)
    assert enc("cidr", IPv4Address("192.168.0.1")) == prefixed(bytes.fromhex("02200104c0a80001"))


def test_cidr_host_bits() -> None:
    with pytest.raises(ValueError, match="host bits"):
        enc("cidr", "10.0.0.1/8")
    with pytest.raises(DecodeError, match="cidr"):
        dec("cidr", bytes.fromhex("020801040a000001"))


@pytest.mark.parametrize("typename", ["inet", "cidr"])
@pytest.mark.parametrize("value", [1.5, None, True, [1, 2], object()])
def test_wrong_type(typename: str, value: object) -> None:
    with pytest.raises(TypeError, match=typename):
        enc(typename, value)


def test_invalid_strings() -> None:
    with pytest.raises(ValueError):
        enc("inet", "not an address")
    with pytest.raises(ValueError):
        enc("cidr", "10.0.0.0/33")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("022000"),                        # header cut short
        bytes.fromhex("02200004c0a800"),                # address cut short
        bytes.fromhex("02200004c0a8000101"),            # trailing byte
        bytes.fromhex("07200004c0a80001"),              # unknown family
        bytes.fromhex("02210004c0a80001"),              # 33-bit netmask
        bytes.fromhex("02200010c0a80001"),              # IPv4 with a 16-byte length
        bytes.fromhex("02200104c0a80001"),              # cidr flag on inet
        bytes.fromhex("03810010") + bytes(16),          # 129-bit netmask
    ],
)
def test_inet_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        dec("inet", data)


def test_cidr_flag_must_be_set() -> None:
    with pytest.raises(DecodeError, match="is_cidr"):
        dec("cidr", V4_HOST)


def test_round_trip_random() -> None:
    rnd = random.Random(869)
    for _ in range(2000):
        v6 = rnd.random() < 0.5
        maxbits = 128 if v6 else 32
        iface = (IPv6Interface if v6 else IPv4Interface)((rnd.getrandbits(maxbits),
                                                          rnd.randint(0, maxbits)))
        got = dec("inet", enc("inet", iface)[4:])
        if iface.network.prefixlen == maxbits:
            assert got == iface.ip
        else:
            assert got == iface
        assert dec("cidr", enc("cidr", iface.network)[4:]) == iface.network

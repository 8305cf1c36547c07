"""CONNECT-IP capsules, datagram payload and request scope (RFC 9484 §4.6, §4.7, §6)."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.h3.capsules import CapsuleParser, encode_capsule
from tquic.h3.connect_ip import (
    AssignedAddress,
    ConnectIpCapsule,
    ConnectIpError,
    IPAddressRange,
    RequestedAddress,
    Scope,
    encode_address_assign,
    encode_address_request,
    encode_ip_datagram,
    encode_route_advertisement,
    parse_address_assign,
    parse_address_request,
    parse_ip_datagram,
    parse_route_advertisement,
    parse_scope,
)
from tquic.h3.errors import H3ErrorCode

net = ipaddress.ip_network
addr = ipaddress.ip_address


def test_address_assign_layout_is_the_rfc_one() -> None:
    # §4.7.1: Request ID (i), IP Version (8), IP Address (32), IP Prefix Length (8).
    value = encode_address_assign([AssignedAddress(1, net("192.0.2.7/32"))])
    assert value == bytes([1, 4, 192, 0, 2, 7, 32])
    assert parse_address_assign(value) == (AssignedAddress(1, net("192.0.2.7/32")),)
    assert parse_address_assign(b"") == ()  # §4.7.1: empty = every address removed


def test_rejected_assignment_is_all_zero_full_length() -> None:
    # §4.7.2: "0.0.0.0/32 or ::/128 to indicate that no address was assigned".
    assert AssignedAddress(3, net("0.0.0.0/32")).rejected
    assert AssignedAddress(3, net("::/128")).rejected
    assert not AssignedAddress(3, net("0.0.0.0/0")).rejected


def test_address_request_round_trip_and_rules() -> None:
    reqs = (RequestedAddress(1, net("0.0.0.0/32")), RequestedAddress(2, net("2001:db8::/64")))
    assert parse_address_request(encode_address_request(reqs)) == reqs
    with pytest.raises(ConnectIpError, match="no Requested Address"):
        parse_address_request(b"")  # §4.7.2: zero Requested Addresses aborts the stream
    with pytest.raises(ConnectIpError, match="request ID 0"):
        parse_address_request(bytes([0, 4, 0, 0, 0, 0, 32]))
    with pytest.raises(ValueError):
        encode_address_request([])


def test_host_bits_beyond_the_prefix_are_malformed() -> None:
    with pytest.raises(ConnectIpError, match="host bits") as info:
        parse_address_assign(bytes([0, 4, 10, 0, 0, 1, 24]))
    assert info.value.code == H3ErrorCode.H3_MESSAGE_ERROR


def test_bad_version_and_truncation_are_malformed() -> None:
    for bad in (bytes([0, 5, 1, 2, 3, 4, 32]), bytes([0, 4, 1, 2]), bytes([0, 4, 1, 2, 3, 4]),
                bytes([0, 4, 1, 2, 3, 4, 33]), bytes([0x40])):
        with pytest.raises(ConnectIpError):
            parse_address_assign(bad)


def test_route_advertisement_round_trip_in_order() -> None:
    ranges = (IPAddressRange.of(net("10.0.0.0/8")), IPAddressRange.of(net("192.0.2.0/24")),
              IPAddressRange(addr("198.51.100.0"), addr("198.51.100.9"), 0),
              IPAddressRange.of(net("::/0")))
    value = encode_route_advertisement(ranges)
    assert parse_route_advertisement(value) == ranges
    assert ranges[0].contains(addr("10.1.2.3")) and not ranges[0].contains(addr("11.0.0.0"))


def test_route_advertisement_order_and_overlap_are_enforced() -> None:
    # §4.7.3: out of order -> abort; overlapping ranges of one protocol -> abort.
    def raw(*ranges: tuple[str, str, int]) -> bytes:
        out = b""
        for start, end, proto in ranges:
            a, b = addr(start), addr(end)
            out += bytes([a.version]) + a.packed + b.packed + bytes([proto])
        return out

    with pytest.raises(ConnectIpError, match="overlaps"):
        parse_route_advertisement(raw(("10.0.0.0", "10.0.0.255", 0), ("10.0.0.128", "10.0.1.0", 0)))
    with pytest.raises(ConnectIpError, match="order"):
        parse_route_advertisement(raw(("::", "::1", 0), ("10.0.0.0", "10.0.0.1", 0)))
    with pytest.raises(ConnectIpError, match="protocol-0"):
        parse_route_advertisement(raw(("10.0.0.0", "10.0.0.255", 0), ("10.0.0.1", "10.0.0.2", 6)))
    with pytest.raises(ConnectIpError, match="start"):
        parse_route_advertisement(raw(("10.0.0.9", "10.0.0.1", 0)))
    with pytest.raises(ValueError):
        encode_route_advertisement([IPAddressRange.of(net("10.0.0.0/8")),
                                    IPAddressRange.of(net("10.0.0.0/16"))])


def test_datagram_payload_context_ids() -> None:
    # §6: Context ID (i), Payload; 0 = IP packet.
    assert encode_ip_datagram(b"\x45pkt") == b"\x00\x45pkt"
    assert parse_ip_datagram(b"\x00\x45pkt") == (0, b"\x45pkt")
    assert parse_ip_datagram(encode_ip_datagram(b"x", 2)) == (2, b"x")
    assert parse_ip_datagram(encode_ip_datagram(b"", 1000)) == (1000, b"")
    with pytest.raises(ConnectIpError):
        parse_ip_datagram(b"")
    with pytest.raises(ConnectIpError):
        parse_ip_datagram(b"\x40")


def test_scope_paths() -> None:
    # §3 default template; §4.6: IPv6 colons and the prefix slash percent-encoded.
    assert Scope().path() == "/.well-known/masque/ip/*/*/"
    assert parse_scope("/.well-known/masque/ip/*/*/") == Scope()
    v6 = Scope(net("2001:db8::/32"), 17)
    assert v6.path() == "/.well-known/masque/ip/2001%3Adb8%3A%3A%2F32/17/"
    assert parse_scope(v6.path()) == v6
    assert parse_scope("/.well-known/masque/ip/192.0.2.1/*/") == Scope(net("192.0.2.1/32"))
    for bad in ("/other/", "/.well-known/masque/ip//*/", "/.well-known/masque/ip/*/256/",
                "/.well-known/masque/ip/example.com/*/", "/.well-known/masque/ip/10.0.0.1%2F8/*/"):
        with pytest.raises(ConnectIpError):
            parse_scope(bad)


def test_capsules_travel_through_the_generic_parser() -> None:
    wire = (encode_capsule(ConnectIpCapsule.ADDRESS_REQUEST,
                           encode_address_request([RequestedAddress(1, net("0.0.0.0/32"))]))
            + encode_capsule(0x4242, b"unknown")
            + encode_capsule(ConnectIpCapsule.ADDRESS_ASSIGN,
                             encode_address_assign([AssignedAddress(1, net("10.9.0.2/32"))])))
    parser = CapsuleParser(frozenset(ConnectIpCapsule))
    got = parser.feed(wire)
    assert [c.type for c in got] == [2, 1]
    assert parse_address_assign(got[1].value)[0].prefix == net("10.9.0.2/32")


# -- fuzz: any bytes either parse or raise ConnectIpError; valid values round-trip ----------

@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_parsers_raise_only_typed_errors(data: bytes) -> None:
    for parse in (parse_address_assign, parse_address_request, parse_route_advertisement,
                  parse_ip_datagram, lambda b: parse_scope(b.decode("latin-1"))):
        with contextlib.suppress(ConnectIpError):
            parse(data)


_v4 = st.integers(0, 32).flatmap(lambda n: st.integers(0, 2**32 - 1).map(
    lambda a: ipaddress.ip_network((a >> (32 - n) << (32 - n) if n else 0, n))))
_v6 = st.integers(0, 128).flatmap(lambda n: st.integers(0, 2**128 - 1).map(
    lambda a: ipaddress.ip_network((a >> (128 - n) << (128 - n) if n else 0, n))))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**62 - 1), st.one_of(_v4, _v6)), max_size=6))
def test_fuzz_assign_round_trip(items: list[tuple[int, ipaddress.IPv4Network]]) -> None:
    assigned = tuple(AssignedAddress(rid, prefix) for rid, prefix in items)
    assert parse_address_assign(encode_address_assign(assigned)) == assigned


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_v4, _v6), max_size=8), st.integers(0, 255))
def test_fuzz_route_round_trip(nets: list[ipaddress.IPv4Network], proto: int) -> None:
    # Build a valid, ordered, non-overlapping list from arbitrary prefixes.
    ranges: list[IPAddressRange] = []
    for n in sorted(set(nets), key=lambda n: (n.version, int(n.network_address))):
        r = IPAddressRange.of(n, proto)
        if ranges and ranges[-1].version == r.version and not ranges[-1].end < r.start:  # type: ignore[operator]
            continue
        ranges.append(r)
    assert parse_route_advertisement(encode_route_advertisement(ranges)) == tuple(ranges)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 2**62 - 1))
def test_fuzz_datagram_round_trip(payload: bytes, ctx: int) -> None:
    assert parse_ip_datagram(encode_ip_datagram(payload, ctx)) == (ctx, payload)

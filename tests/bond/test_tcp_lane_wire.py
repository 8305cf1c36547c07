"""The TCP lane's codecs and rules, without sockets: SOCKS5 messages (RFC 1928/1929,
fuzzed), the target policy, CONNECT authorities, Proxy-Status."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.bond.tcp_lane.opener import reply_for
from tquic.bond.tcp_lane.policy import PolicyError, TargetPolicy
from tquic.bond.tcp_lane.socks_wire import (
    AddressType,
    Command,
    Reply,
    SocksAddress,
    SocksError,
    SocksRequest,
    UdpPacket,
    UserPass,
    encode_request,
    encode_udp,
    encode_userpass,
    parse_greeting,
    parse_request,
    parse_udp,
    parse_userpass,
)
from tquic.bond.tcp_lane.targets import (
    TargetError,
    parse_authority,
    proxy_status_error,
    proxy_status_value,
)

# -- SOCKS5 messages ------------------------------------------------------------------


def test_request_with_each_address_type_round_trips() -> None:
    for address in (SocksAddress("192.0.2.7", 80, AddressType.IPV4),
                    SocksAddress("2001:db8::1", 443, AddressType.IPV6),
                    SocksAddress("example.com", 8080, AddressType.DOMAIN)):
        data = encode_request(SocksRequest(Command.CONNECT, address)) + b"extra"
        parsed = parse_request(data)
        assert parsed is not None
        request, used = parsed
        assert request == SocksRequest(Command.CONNECT, address)
        assert data[used:] == b"extra"
        for cut in range(len(data) - 5):
            assert parse_request(data[:cut]) is None, "a prefix asks for more bytes"


def test_authority_puts_ipv6_in_brackets() -> None:
    assert SocksAddress("2001:db8::1", 443, AddressType.IPV6).authority == "[2001:db8::1]:443"
    assert SocksAddress("example.com", 80, AddressType.DOMAIN).authority == "example.com:80"


@pytest.mark.parametrize(("data", "reply"), [
    (b"\x05\x09\x00\x01\x7f\x00\x00\x01\x00\x50", Reply.COMMAND_NOT_SUPPORTED),
    (b"\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50", Reply.ADDRESS_TYPE_NOT_SUPPORTED),
    (b"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", Reply.GENERAL_FAILURE),
    (b"\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50", Reply.GENERAL_FAILURE),  # RSV not zero
    (b"\x05\x01\x00\x03\x00\x00\x50", Reply.GENERAL_FAILURE),  # empty domain name
    (b"\x05\x01\x00\x03\x03a b\x00\x50", Reply.HOST_UNREACHABLE),  # space in a name
])
def test_malformed_request_names_its_reply(data: bytes, reply: Reply) -> None:
    with pytest.raises(SocksError) as info:
        parse_request(data)
    assert info.value.reply == reply


def test_greeting_of_another_version_has_no_reply() -> None:
    with pytest.raises(SocksError) as info:
        parse_greeting(b"\x04\x01\x00")
    assert info.value.reply is None
    assert parse_greeting(b"\x05\x02\x00") is None
    parsed = parse_greeting(b"\x05\x02\x00\x02")
    assert parsed is not None and parsed[0].methods == (0, 2)


def test_userpass_round_trip_and_bad_version() -> None:
    message = encode_userpass(UserPass(b"alice", b"s3cret"))
    assert parse_userpass(message) == (UserPass(b"alice", b"s3cret"), len(message))
    assert parse_userpass(message[:-1]) is None
    with pytest.raises(SocksError):
        parse_userpass(b"\x05" + message[1:])


def test_udp_header_round_trip() -> None:
    packet = UdpPacket(SocksAddress("2001:db8::5", 53, AddressType.IPV6), b"query")
    assert parse_udp(encode_udp(packet)) == packet
    with pytest.raises(SocksError):
        parse_udp(b"\x00\x01\x00\x01\x7f\x00\x00\x01\x00\x35")  # RSV not zero


REPLIES = {None, *Reply}


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_parsers_only_raise_socks_error(data: bytes) -> None:
    for parse in (parse_greeting, parse_userpass, parse_request):
        try:
            parse(data)
        except SocksError as exc:
            assert exc.reply in REPLIES
    try:
        parse_udp(data)
    except SocksError as exc:
        assert exc.reply in REPLIES


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([1, 2, 3, 9]), st.sampled_from([1, 3, 4, 7]))
def test_fuzz_requests_after_a_valid_head(tail: bytes, command: int, kind: int) -> None:
    try:
        parsed = parse_request(bytes((5, command, 0, kind)) + tail)
    except SocksError as exc:
        assert exc.reply in REPLIES
        return
    if parsed is not None:
        request, used = parsed
        assert used <= 4 + len(tail)
        assert 0 <= request.address.port <= 65535


# -- policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.1", "172.16.0.9",
                                  "169.254.1.1", "fe80::1", "fd00::1", "224.0.0.1", "ff02::1",
                                  "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1"])
def test_default_policy_refuses_special_ranges(host: str) -> None:
    assert TargetPolicy().address_refusal(ipaddress.ip_address(host)) is not None


def test_default_policy_allows_global_addresses() -> None:
    policy = TargetPolicy()
    assert policy.refusal(ipaddress.ip_address("8.8.8.8"), 443) is None
    assert policy.refusal(ipaddress.ip_address("2606:4700::1111"), 80) is None


def test_allow_deny_and_ports() -> None:
    policy = TargetPolicy.build(allow=["10.0.0.0/8"], deny=["10.9.0.0/16", "1.1.1.1"],
                                ports=["80", "443", "8000-8100"], deny_ports=[8080])
    assert policy.refusal(ipaddress.ip_address("10.1.1.1"), 80) is None
    assert policy.refusal(ipaddress.ip_address("10.9.1.1"), 80) is not None, "deny wins"
    assert policy.refusal(ipaddress.ip_address("1.1.1.1"), 443) is not None
    assert policy.refusal(ipaddress.ip_address("10.1.1.1"), 8050) is None
    assert policy.refusal(ipaddress.ip_address("10.1.1.1"), 22) is not None
    assert policy.refusal(ipaddress.ip_address("10.1.1.1"), 8080) is not None
    only = TargetPolicy.build(allow=["10.0.0.0/8"], allow_global=False)
    assert only.refusal(ipaddress.ip_address("8.8.8.8"), 80) is not None


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"allow": ["10.0.0.0/33"]}, "allow"), ({"deny": ["nonsense"]}, "deny"),
    ({"ports": ["0"]}, "ports"), ({"deny_ports": ["80-70"]}, "deny_ports"),
    ({"connect_timeout": 0}, "connect_timeout"),
])
def test_bad_policy_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError, match=field):
        TargetPolicy.build(**kwargs)  # type: ignore[arg-type]


# -- targets, statuses ----------------------------------------------------------------


def test_parse_authority() -> None:
    assert parse_authority("example.com:443").host == "example.com"
    assert parse_authority("[2001:db8::1]:80").host == "2001:db8::1"
    assert parse_authority("192.0.2.1:8080").port == 8080
    for bad in ("example.com", "2001:db8::1:80", "[::1]", "host:0", "host:99999", "a b:80",
                "[nothost]:80", ":80", "x@y:80"):
        with pytest.raises(TargetError) as info:
            parse_authority(bad)
        assert info.value.status == 400


def test_proxy_status_round_trip_and_socks_replies() -> None:
    value = proxy_status_value("connection_refused", 'port "closed"\n')
    assert proxy_status_error(value) == "connection_refused"
    assert b"\n" not in value
    assert reply_for(502, "connection_refused") == Reply.CONNECTION_REFUSED
    assert reply_for(403, "destination_ip_prohibited") == Reply.NOT_ALLOWED
    assert reply_for(401, None) == Reply.NOT_ALLOWED
    assert reply_for(502, "destination_ip_unroutable") == Reply.NETWORK_UNREACHABLE
    assert reply_for(504, "connection_timeout") == Reply.HOST_UNREACHABLE
    assert reply_for(500, None) == Reply.GENERAL_FAILURE

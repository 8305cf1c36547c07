"""CONNECT-UDP (RFC 9298): URI templates (§2), target paths (§3), the proxy's policy and
authentication, and a DNS query through a proxy on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.aio import connect_h3, serve_h3
from tquic.h3.connect_udp import (
    TargetError,
    TemplateError,
    UdpProxyRefused,
    decode_udp_payload,
    encode_udp_payload,
    expand_template,
    open_udp,
    parse_default_path,
)
from tquic.h3.connect_udp_server import TargetPolicy, UdpProxyServer
from tquic.h3.messages import Request, Response
from tquic.h3.settings import H3Config
from tquic.testing.dns_stub import dns_answer_address, dns_query, dns_responder

CERT, KEY = generate_self_signed()
DEFAULT = "https://proxy.example:4433/.well-known/masque/udp/{target_host}/{target_port}/"


# -- §2 templates, §3 targets ----------------------------------------------------------------

def test_templates_expand_as_the_rfc_examples() -> None:
    assert expand_template(DEFAULT, "192.0.2.6", 443) == (
        "https://proxy.example:4433/.well-known/masque/udp/192.0.2.6/443/")
    assert expand_template(DEFAULT, "2001:db8::42", 53).endswith("/udp/2001%3Adb8%3A%3A42/53/")
    assert expand_template("https://p.example/masque{?target_host,target_port}",
                           "example.org", 53) == "https://p.example/masque?target_host=example.org&target_port=53"
    assert expand_template("https://p.example/masque?h={target_host}&p={target_port}",
                           "a.example", 1) == "https://p.example/masque?h=a.example&p=1"


@pytest.mark.parametrize("template", [
    "http://p.example/{target_host}/{target_port}",      # not https
    "https://{target_host}/{target_port}",                # variable in the authority
    "https://p.example/{+target_host}/{target_port}",     # reserved expansion
    "https://p.example/{target_host}",                    # no target_port
    "https://p.example/{target_host}/{target_port}/ x",   # a space
    "https://p.example/{#target_host}/{target_port}",     # fragment expansion
])
def test_templates_that_break_section_2_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        expand_template(template, "192.0.2.1", 53)


def test_default_path_parses_hosts_and_ports() -> None:
    assert parse_default_path("/.well-known/masque/udp/192.0.2.6/443/") == ("192.0.2.6", 443)
    assert parse_default_path("/.well-known/masque/udp/2001%3Adb8%3A%3A42/53/") == (
        "2001:db8::42", 53)
    assert parse_default_path("/.well-known/masque/udp/dns.example/53/") == ("dns.example", 53)


@pytest.mark.parametrize("path", [
    "/.well-known/masque/udp//53/", "/.well-known/masque/udp/h/0/", "/.well-known/masque/udp/h/x/",
    "/.well-known/masque/udp/h/70000/", "/masque/udp/h/53/", "/.well-known/masque/udp/h/53",
    "/.well-known/masque/udp/%ff/53/", "/.well-known/masque/udp/a%2Fb/53/",
])
def test_malformed_target_paths_are_400(path: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_default_path(path)
    assert caught.value.status == 400


@given(st.text(max_size=80))
def test_target_path_parser_fuzz_raises_only_target_error(tail: str) -> None:
    with contextlib.suppress(TargetError):
        host, port = parse_default_path("/.well-known/masque/udp/" + tail)
        assert host and 1 <= port <= 65535


@given(st.binary(max_size=64))
def test_datagram_payload_round_trip_and_foreign_context_ids(data: bytes) -> None:
    assert decode_udp_payload(encode_udp_payload(data)) == data
    assert decode_udp_payload(b"\x01" + data) is None  # Context ID 1 was never negotiated


def test_default_policy_refuses_local_targets_and_allow_opens_them() -> None:
    policy = TargetPolicy()
    for address in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.0.1", "::1", "fe80::1",
                    "fd00::1", "100.64.0.1", "224.0.0.1", "0.0.0.0", "::ffff:127.0.0.1"):
        assert not policy.permits(ipaddress.ip_address(address)), address
    assert policy.permits(ipaddress.ip_address("9.9.9.9"))
    local = TargetPolicy.from_strings(allow=["127.0.0.0/8"], deny=["9.9.9.0/24"])
    assert local.permits(ipaddress.ip_address("127.0.0.1"))
    assert not local.permits(ipaddress.ip_address("9.9.9.9"))
    with pytest.raises(ValueError, match="--allow"):
        TargetPolicy.from_strings(allow=["not-a-net"])


# -- a proxy on loopback ------------------------------------------------------------------------

async def not_found(request: Request) -> Response:
    return Response(404)


@contextlib.asynccontextmanager
async def proxy(policy: TargetPolicy, tokens: tuple[str, ...] = (),
                idle_timeout: float = 120.0) -> AsyncIterator[tuple[int, UdpProxyServer]]:
    relay = UdpProxyServer(policy, tokens, idle_timeout=idle_timeout)
    server = await serve_h3("127.0.0.1", 0, QuicConfiguration(
        is_client=False, certificate=CERT, private_key=KEY, max_datagram_frame_size=65535),
        not_found, connect_handler=relay,
        h3_config=H3Config(enable_connect_protocol=True, enable_datagrams=True))
    try:
        yield server.local_address[1], relay
    finally:
        server.close()


def client_config() -> QuicConfiguration:
    return QuicConfiguration(verify_peer=False, max_datagram_frame_size=65535)


def test_dns_query_through_the_proxy_and_refusals() -> None:
    async def main() -> None:
        transport, responder, dns_port = await dns_responder()
        try:
            async with proxy(TargetPolicy.from_strings(allow=["127.0.0.0/8"]), ("t0ken",)) as (
                    port, relay):
                client = await connect_h3("127.0.0.1", port, client_config(),
                                          h3_config=H3Config(enable_datagrams=True))
                async with client:
                    url = f"https://127.0.0.1:{port}"
                    auth = {"proxy-authorization": "Bearer t0ken"}
                    udp = await open_udp(client, url, "127.0.0.1", dns_port, headers=auth)
                    udp.send(dns_query("example.test"))
                    reply = await asyncio.wait_for(udp.receive(), 5)
                    assert reply[:2] == b"\x12\x34" and dns_answer_address(reply) == "192.0.2.7"
                    udp.close()
                    with pytest.raises(UdpProxyRefused) as missing:
                        await open_udp(client, url, "127.0.0.1", dns_port)
                    assert missing.value.status == 401
                    with pytest.raises(UdpProxyRefused) as wrong:
                        await open_udp(client, url, "127.0.0.1", dns_port,
                                       headers={"proxy-authorization": "Bearer nope"})
                    assert wrong.value.status == 401
                assert relay.counters.refused == {401: 2}
            assert len(responder.queries) == 1
        finally:
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_denied_target_gets_403_and_nothing_is_sent() -> None:
    async def main() -> None:
        transport, responder, dns_port = await dns_responder()
        try:
            async with proxy(TargetPolicy()) as (port, relay):  # default: loopback refused
                client = await connect_h3("127.0.0.1", port, client_config(),
                                          h3_config=H3Config(enable_datagrams=True))
                async with client:
                    with pytest.raises(UdpProxyRefused) as refused:
                        await open_udp(client, f"https://127.0.0.1:{port}", "127.0.0.1", dns_port)
                    assert refused.value.status == 403
                    assert "destination_ip_prohibited" in (refused.value.proxy_status or "")
                    with pytest.raises(UdpProxyRefused) as dns:
                        await open_udp(client, f"https://127.0.0.1:{port}", "no-such-host.invalid", 53)
                    assert dns.value.status == 502 and "dns_error" in (dns.value.proxy_status or "")
                await asyncio.sleep(0.2)
                assert relay.counters.accepted == 0
            assert responder.queries == [], "a denied target must receive nothing"
        finally:
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_idle_sessions_and_unreachable_targets_end_the_request_stream() -> None:
    async def main() -> None:
        transport, _responder, dns_port = await dns_responder()
        closed_port = dns_port
        transport.close()  # nothing listens there any more: ICMP port unreachable
        transport, _responder, dns_port = await dns_responder()
        try:
            async with proxy(TargetPolicy.from_strings(allow=["127.0.0.0/8"]),
                             idle_timeout=0.4) as (port, relay):
                client = await connect_h3("127.0.0.1", port, client_config(),
                                          h3_config=H3Config(enable_datagrams=True))
                async with client:
                    url = f"https://127.0.0.1:{port}"
                    idle = await open_udp(client, url, "127.0.0.1", dns_port)
                    unreachable = await open_udp(client, url, "127.0.0.1", closed_port)
                    unreachable.send(b"anyone?")
                    await asyncio.wait_for(unreachable.wait_closed(), 3)  # §3: ICMP -> closed
                    await asyncio.wait_for(idle.wait_closed(), 3)  # idle 0.4 s -> closed
                    with pytest.raises(ConnectionError):
                        await idle.receive()
                assert relay.counters.active == 0
        finally:
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 20))

"""The TCP lane's edges on loopback: bounded buffering against a target that does not
read, the redirect listener refusing connections nobody redirected, the nftables
rule text, a stalled SOCKS handshake, and a listener closed mid-relay."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
from lane_rig import echo, running_lane, socks_connect, tcp_target

from tquic.bond.tcp_lane import (
    TargetPolicy,
    original_destination,
    serve_redirect,
    serve_socks,
)
from tquic.bond.tcp_lane.nft import RedirectRule
from tquic.bond.tcp_lane.socks_wire import (
    AddressType,
    Command,
    Reply,
    SocksAddress,
    SocksRequest,
    encode_request,
)

pytestmark = pytest.mark.timeout(60)


def run(main: Callable[[], Awaitable[None]], timeout: float = 40.0) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout))


def test_target_that_never_reads_is_bounded_not_buffered_forever() -> None:
    """The server keeps at most ``max_unread`` bytes for a stalled target, then resets."""
    stalled: list[asyncio.StreamWriter] = []

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)
        await asyncio.sleep(30)

    async def main() -> None:
        policy = TargetPolicy.build(allow=["127.0.0.0/8"])
        async with tcp_target(never_reads) as port, running_lane(policy) as lane:
            lane.handler._max_unread = 1 << 20  # 1 MiB for the test (default 32 MiB)
            request = encode_request(SocksRequest(
                Command.CONNECT, SocksAddress("127.0.0.1", port, AddressType.IPV4)))
            rep, reader, writer = await socks_connect(lane.socks_port, request)
            assert rep == Reply.SUCCEEDED
            chunk = b"z" * 65536
            sent = 0
            with pytest.raises(ConnectionError):  # reset once the bound is passed
                for _ in range(1000):  # 64 MB at most: far beyond every buffer on the way
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), 10)
                    sent += len(chunk)
                await asyncio.wait_for(reader.read(), 10)
                raise AssertionError(f"{sent} bytes were accepted and nothing was reset")
            # 1 MiB in the server's tunnel plus socket and QUIC buffers on the way
            # (about 6 MB here), far from the 64 MB the client tried to push.
            assert sent < 16 << 20, f"{sent} bytes accepted before the reset"
            writer.close()

    run(main)


def test_redirect_listener_resets_connections_nobody_redirected() -> None:
    async def main() -> None:
        async with running_lane() as lane:
            listener = await serve_redirect("127.0.0.1:0", lane.opener)
            try:
                reader, writer = await asyncio.open_connection(*listener.address)
                with pytest.raises(ConnectionResetError):
                    writer.write(b"GET / HTTP/1.0\r\n\r\n")
                    await writer.drain()
                    await asyncio.wait_for(reader.read(), 5)
                writer.close()
                assert listener.counters.failed == 1
                assert lane.handler.counters.accepted == 0, "nothing was relayed"
            finally:
                await listener.aclose()

    run(main)


def test_original_destination_of_a_plain_connection_is_none() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()):
            accepted, _ = server.accept()
            with accepted:
                assert original_destination(accepted) is None


def test_nft_rule_text() -> None:
    rule = RedirectRule("lan0", 12345, ("192.0.2.0/24", "2001:db8::/32"))
    text = rule.ruleset()
    assert text.startswith("table inet tquic_lane_12345 {")
    assert 'iifname "lan0" fib daddr type local return' in text
    assert 'iifname "lan0" ip daddr 192.0.2.0/24 return' in text
    assert 'iifname "lan0" ip6 daddr 2001:db8::/32 return' in text
    assert text.index("return") < text.index('meta l4proto tcp redirect to :12345')
    for bad in (("lan 0", 1), ("x" * 16, 1), ('a"b', 1), ("lan0", 0), ("lan0", 70000)):
        with pytest.raises(ValueError):
            RedirectRule(*bad)
    with pytest.raises(ValueError):
        RedirectRule("lan0", 1, ("not-a-cidr",))


def test_stalled_socks_handshake_is_dropped() -> None:
    async def main() -> None:
        async with running_lane() as lane:
            listener = await serve_socks("127.0.0.1:0", lane.opener, handshake_timeout=0.3)
            try:
                reader, writer = await asyncio.open_connection(*listener.address)
                writer.write(b"\x05\x01")  # half a greeting, then silence
                assert await asyncio.wait_for(reader.read(), 5) == b""
                writer.close()
            finally:
                await listener.aclose()

    run(main)


def test_closing_the_listener_ends_its_relays() -> None:
    async def main() -> None:
        async with tcp_target(echo) as port, running_lane() as lane:
            request = encode_request(SocksRequest(
                Command.CONNECT, SocksAddress("127.0.0.1", port, AddressType.IPV4)))
            rep, reader, writer = await socks_connect(lane.socks_port, request)
            assert rep == Reply.SUCCEEDED
            writer.write(b"hello")
            assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
            await asyncio.wait_for(lane.socks.aclose(), 5)
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                data = await asyncio.wait_for(reader.read(), 5)
                if not data:
                    raise ConnectionResetError("closed")
            writer.close()
            assert lane.socks.counters.active == 0

    run(main)


def test_optimistic_data_sent_before_the_reply_is_relayed() -> None:
    async def main() -> None:
        async with tcp_target(echo) as port, running_lane() as lane:
            request = encode_request(SocksRequest(
                Command.CONNECT, SocksAddress("127.0.0.1", port, AddressType.IPV4)))
            reader, writer = await asyncio.open_connection("127.0.0.1", lane.socks_port)
            payload = b"early bytes " * 100
            writer.write(b"\x05\x01\x00" + request + payload)  # all at once
            writer.write_eof()
            data = await asyncio.wait_for(reader.read(), 10)
            assert data[:2] == b"\x05\x00"
            assert data[2:4] == b"\x05\x00"
            assert hashlib.sha256(data[12:]).digest() == hashlib.sha256(payload).digest()
            writer.close()

    run(main)


def test_client_reset_resets_the_target_and_is_counted() -> None:
    """RST from the application → stream reset (H3_CONNECT_ERROR) → RST to the target;
    the server's relay still ends normally and adds up what it carried."""
    target_saw: list[BaseException | bytes] = []

    async def echo_then_watch(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        data = await reader.readexactly(1000)
        writer.write(data)
        await writer.drain()
        try:
            target_saw.append(await asyncio.wait_for(reader.read(), 10))
        except ConnectionError as exc:
            target_saw.append(exc)
        writer.close()

    async def main() -> None:
        async with tcp_target(echo_then_watch) as port, running_lane() as lane:
            request = encode_request(SocksRequest(
                Command.CONNECT, SocksAddress("127.0.0.1", port, AddressType.IPV4)))
            rep, reader, writer = await socks_connect(lane.socks_port, request)
            assert rep == Reply.SUCCEEDED
            writer.write(b"r" * 1000)
            assert await asyncio.wait_for(reader.readexactly(1000), 10) == b"r" * 1000
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # RST
            await lane.settled()
            for _ in range(100):
                if target_saw:
                    break
                await asyncio.sleep(0.02)
            assert target_saw and isinstance(target_saw[0], ConnectionResetError), target_saw
            assert lane.handler.counters.bytes_up == 1000
            assert lane.handler.counters.bytes_down == 1000

    run(main)


def test_udp_to_a_refused_destination_is_asked_once_then_dropped() -> None:
    async def main() -> None:
        async with running_lane(TargetPolicy()) as lane:  # default: loopback refused
            request = encode_request(SocksRequest(
                Command.UDP_ASSOCIATE, SocksAddress("0.0.0.0", 0, AddressType.IPV4)))
            reader, writer = await asyncio.open_connection("127.0.0.1", lane.socks_port)
            writer.write(b"\x05\x01\x00" + request)
            reply = await asyncio.wait_for(reader.readexactly(12), 5)
            assert reply[2:4] == b"\x05\x00"
            relay_port = struct.unpack("!H", reply[10:12])[0]
            loop = asyncio.get_running_loop()
            client, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=("127.0.0.1", relay_port))
            header = b"\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35"  # 127.0.0.1:53
            for _ in range(3):
                client.sendto(header + b"query")
                await asyncio.sleep(0.2)
            assert lane.handler.counters.refused_policy == 1, "asked once, not per datagram"
            assert lane.handler.counters.accepted == 0
            client.close()
            writer.close()

    run(main)

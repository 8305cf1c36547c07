"""Hostile bytes at a live SOCKS5 listener: whatever arrives, the server answers in
SOCKS5 terms (or not at all) and closes the connection, within a bound, and nothing
is logged as an error (no handler ever raised)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tquic.bond.tcp_lane import LaneConnectError, SocksCredentials, serve_socks
from tquic.bond.tcp_lane.socks_wire import Reply, SocksAddress
from tquic.h3.connect_udp import UdpProxySession
from tquic.h3.tunnel import Tunnel

pytestmark = pytest.mark.timeout(120)


class RefusingOpener:
    """Every CONNECT is refused as the bond server would refuse a closed port."""

    async def open_tcp(self, address: SocksAddress) -> Tunnel:
        raise LaneConnectError("refused", Reply.CONNECTION_REFUSED, 502)

    async def open_udp(self, address: SocksAddress) -> UdpProxySession:
        raise LaneConnectError("refused", Reply.CONNECTION_REFUSED, 502)


# Mostly-valid prefixes with random tails reach deeper than uniform noise.
PREFIXES = [b"", b"\x05", b"\x05\x01\x00", b"\x05\x01\x02", b"\x05\x02\x00\x02",
            b"\x05\x01\x00\x05\x01\x00", b"\x05\x01\x00\x05\x03\x00",
            b"\x05\x01\x02\x01\x01u\x01p"]


@pytest.mark.parametrize("credentials", [None, SocksCredentials("u", "p")])
def test_fuzz_live_socks_listener(credentials: SocksCredentials | None,
                                  caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    listener = loop.run_until_complete(serve_socks("127.0.0.1:0", RefusingOpener(), credentials,
                                                   handshake_timeout=0.5))
    port = listener.address[1]

    async def exchange(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            await writer.drain()
            writer.write_eof()
            return await asyncio.wait_for(reader.read(), 3)  # b"" or the answer, then EOF
        except ConnectionError:
            return b""
        finally:
            writer.close()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(PREFIXES), st.binary(max_size=80))
    def check(prefix: bytes, tail: bytes) -> None:
        answer = loop.run_until_complete(exchange(prefix + tail))
        assert answer == b"" or answer[0] in (1, 5), answer  # SOCKS5 or RFC 1929 replies
        assert len(answer) <= 2 + 2 + 22, "one method choice, auth status and reply at most"

    caplog.set_level(logging.ERROR, logger="tquic.bond.lane")
    try:
        check()
    finally:
        loop.run_until_complete(listener.aclose())
        loop.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

"""Retries a peer never answers (issue 19): after ``retries_unanswered_per_peer``
Retries without a token coming back, a peer's new Initials are dropped cheaply;
real clients, which answer, are not affected."""

from __future__ import annotations

import asyncio
import os
import socket

import tquic
from tquic.cli.hq import HqServer
from tquic.core.config import QuicConfiguration
from tquic.io.admission import EndpointLimits, RetryLedger
from tquic.wire.version import QUIC_V1


def test_the_ledger_counts_decays_and_forgets_a_peer_that_answers() -> None:
    ledger = RetryLedger(max_unanswered=2, limit=2)
    peer = ("192.0.2.1", 4000)
    assert ledger.allow(peer, 0.0)
    ledger.sent(peer, 0.0)
    ledger.sent(peer, 0.0)
    assert not ledger.allow(peer, 0.0)  # two outstanding
    assert not ledger.allow(peer, 0.0)  # asking again does not count
    assert ledger.allow(peer, 1.1)  # decayed below the limit (one per second)
    ledger.sent(peer, 1.1)
    ledger.sent(peer, 1.1)
    assert not ledger.allow(peer, 1.1)
    ledger.answered(peer)  # a token came back: a real client
    assert ledger.allow(peer, 1.1) and len(ledger) == 0
    for n in range(5):  # bounded table: the oldest peer is evicted
        ledger.sent(("192.0.2.2", n), 2.0)
    assert len(ledger) == 2


def _initial_without_token() -> bytes:
    head = b"\xc0" + QUIC_V1.to_bytes(4, "big") + b"\x08" + os.urandom(8) + b"\x00\x00"
    return head + (0x4000 | 1200).to_bytes(2, "big") + os.urandom(1200)


def test_a_peer_that_ignores_retries_stops_getting_them_and_real_clients_connect(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        limits = EndpointLimits(retry="always", retries_unanswered_per_peer=3)
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None),
                                   limits=limits)
        stats = server.endpoint.stats
        loop = asyncio.get_running_loop()
        async with server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder:
                for _ in range(8):
                    flooder.sendto(_initial_without_token(), server.local_address)
                deadline = loop.time() + 10
                while stats.retries_sent + stats.retries_suppressed < 8:
                    assert loop.time() < deadline, "the Initials were not all handled"
                    await asyncio.sleep(0.02)
            assert (stats.retries_sent, stats.retries_suppressed) == (3, 5)
            async with tquic.connect("127.0.0.1", server.local_address[1], client_config,
                                     timeout=10):
                assert stats.retries_sent == 4  # the real client's one Retry, answered

    asyncio.run(asyncio.wait_for(main(), 20))

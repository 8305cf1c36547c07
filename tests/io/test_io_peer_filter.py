"""Peers the kernel drops (issue 19): the eBPF socket filter, its map, and the
endpoint's decisions to block a peer that floods it.

The kernel tests need CAP_BPF (root here) and skip with the reason without it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator

import pytest

import tquic
from tquic.cli.hq import HqServer
from tquic.core.config import QuicConfiguration
from tquic.io import ebpf
from tquic.io.admission import Admission, EndpointLimits, PeerPenalties
from tquic.io.peer_filter import (
    SCOPE_ALL,
    SCOPE_TOKENLESS_INITIALS,
    KernelPeerFilter,
    kernel_peer_filter,
    peer_key,
)
from tquic.wire.version import QUIC_V1, QUIC_V2


def _initial(version: int = QUIC_V1, token: bytes = b"") -> bytes:
    type_bits = 0x10 if version == QUIC_V2 else 0x00
    head = bytes((0xC0 | type_bits,)) + version.to_bytes(4, "big") + b"\x08" + os.urandom(8)
    head += b"\x08" + os.urandom(8) + bytes((len(token),)) + token
    return head + (0x4000 | 1200).to_bytes(2, "big") + os.urandom(1200)


SHORT = b"\x41" + os.urandom(40)


@pytest.fixture
def kernel_filter() -> Iterator[KernelPeerFilter]:
    filt = kernel_peer_filter(64)
    if filt is None:
        pytest.skip("loading an eBPF socket filter needs root or CAP_BPF")
    try:
        yield filt
    finally:
        filt.close()


def _pair(family: int, host: str) -> tuple[socket.socket, socket.socket]:
    server = socket.socket(family, socket.SOCK_DGRAM)
    client = socket.socket(family, socket.SOCK_DGRAM)
    try:
        server.bind((host, 0))
        client.bind((host, 0))
    except OSError as exc:
        server.close()
        client.close()
        pytest.skip(f"no {host} here: {exc}")
    server.settimeout(0.2)
    return server, client


def _arrives(server: socket.socket, client: socket.socket, datagram: bytes) -> bool:
    client.sendto(datagram, server.getsockname())
    try:
        return server.recv(4096) == datagram
    except TimeoutError:
        return False


def test_labels_resolve_to_relative_offsets() -> None:
    program = ebpf.assemble([
        ebpf.jump_to(ebpf.JEQ, ebpf.R0, 0, "end"),
        ebpf.mov_imm(ebpf.R0, 1),
        ebpf.Label("end"),
        ebpf.exit_insn(),
    ])
    assert [insn.off for insn in program] == [1, 0, 0]
    with pytest.raises(ValueError, match="undefined label"):
        ebpf.assemble([ebpf.goto("nowhere")])
    with pytest.raises(ValueError, match="defined twice"):
        ebpf.assemble([ebpf.Label("a"), ebpf.Label("a")])


def test_an_ipv4_peer_and_its_mapped_form_share_a_key() -> None:
    assert peer_key("127.0.0.1", 443) == peer_key("::ffff:127.0.0.1", 443)
    assert peer_key("127.0.0.1", 443) != peer_key("127.0.0.1", 444)
    assert len(peer_key("2001:db8::1", 1)) == 20


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_each_scope_drops_what_it_names_until_it_expires(
        kernel_filter: KernelPeerFilter, family: int, host: str) -> None:
    server, client = _pair(family, host)
    bystander = socket.socket(family, socket.SOCK_DGRAM)
    with server, client, bystander:
        bystander.bind((host, 0))
        kernel_filter.attach(server)
        peer = client.getsockname()[:2]
        assert _arrives(server, client, _initial())

        kernel_filter.block(peer, 30.0, SCOPE_TOKENLESS_INITIALS)
        assert not _arrives(server, client, _initial())
        assert not _arrives(server, client, _initial(QUIC_V2))
        assert _arrives(server, client, _initial(token=b"retry-token"))  # came back
        assert _arrives(server, client, SHORT)
        assert _arrives(server, bystander, _initial())  # another port: not blocked

        kernel_filter.block(peer, 30.0, SCOPE_ALL)
        assert not _arrives(server, client, SHORT)
        assert not _arrives(server, client, _initial(token=b"retry-token"))

        kernel_filter.unblock(peer)
        assert _arrives(server, client, SHORT)
        kernel_filter.block(peer, 0.05, SCOPE_ALL)
        time.sleep(0.1)  # the block's time has passed: the kernel compares clocks
        assert _arrives(server, client, SHORT)


class RecordingFilter:
    def __init__(self) -> None:
        self.blocks: list[tuple[tuple[str, int], int]] = []

    def block(self, peer: tuple[str, int], seconds: float, scope: int) -> None:
        self.blocks.append((peer, scope))

    def unblock(self, peer: tuple[str, int]) -> None:
        self.blocks.append((peer, 0))

    def initials_over_budget(self) -> int:
        return 0

    def close(self) -> None:
        pass


def test_a_peer_over_its_junk_rate_is_blocked_once_per_block() -> None:
    recorder = RecordingFilter()
    penalties = PeerPenalties(EndpointLimits(junk_per_peer=5.0, peer_block_seconds=2.0),
                              recorder)  # type: ignore[arg-type]
    peer, other = ("192.0.2.1", 1000), ("192.0.2.1", 1001)
    for _ in range(5):
        penalties.junk(peer, 10.0)
    assert recorder.blocks == []  # within its burst
    for _ in range(10):
        penalties.junk(peer, 10.0)  # queued before the block took effect: one block
    assert recorder.blocks == [(peer, SCOPE_ALL)]
    penalties.junk(other, 10.0)
    assert len(recorder.blocks) == 1  # the other port has its own budget
    for _ in range(20):
        penalties.junk(peer, 12.5)  # the block expired and the peer goes on
    assert recorder.blocks[1:] == [(peer, SCOPE_ALL)]


def test_unanswered_retries_block_tokenless_initials_then_junk_widens_it() -> None:
    recorder = RecordingFilter()
    penalties = PeerPenalties(EndpointLimits(junk_per_peer=1.0), recorder)  # type: ignore[arg-type]
    peer = ("2001:db8::7", 443)
    penalties.retry_refused(peer, 0.0)
    penalties.retry_refused(peer, 0.5)
    assert recorder.blocks == [(peer, SCOPE_TOKENLESS_INITIALS)]
    penalties.junk(peer, 0.5)
    penalties.junk(peer, 0.5)
    assert recorder.blocks[-1] == (peer, SCOPE_ALL)
    assert penalties.blocks == 2


def test_a_peer_that_answers_a_retry_is_unblocked() -> None:
    recorder = RecordingFilter()
    admission = Admission(EndpointLimits(retries_unanswered_per_peer=2), 0.0,
                          recorder)  # type: ignore[arg-type]
    peer = ("192.0.2.3", 5000)  # a load generator: many handshakes on one socket
    assert admission.allow_retry(peer, 0.0) and admission.allow_retry(peer, 0.0)
    assert not admission.allow_retry(peer, 0.0)
    assert recorder.blocks == [(peer, SCOPE_TOKENLESS_INITIALS)]
    admission.retry_answered(peer)  # one of its tokens came back
    assert recorder.blocks[-1] == (peer, 0)  # lifted
    assert admission.allow_retry(peer, 0.0)
    admission.penalties.junk(peer, 0.0)  # nothing to lift twice
    admission.retry_answered(peer)
    assert len(recorder.blocks) == 2


def test_without_a_kernel_filter_nothing_is_blocked() -> None:
    penalties = PeerPenalties(EndpointLimits(junk_per_peer=1.0), None)
    for _ in range(10):
        penalties.junk(("192.0.2.9", 9), 0.0)
        penalties.retry_refused(("192.0.2.9", 9), 0.0)
    assert penalties.blocks == 0 and not penalties.in_kernel


def test_a_junk_flood_is_cut_off_in_the_kernel_while_a_real_client_connects(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    if kernel_peer_filter(8) is None:
        pytest.skip("loading an eBPF socket filter needs root or CAP_BPF")

    async def main() -> None:
        limits = EndpointLimits(junk_per_peer=10.0, peer_block_seconds=30.0)
        server = await tquic.serve("127.0.0.1", 0, server_config, HqServer(None),
                                   limits=limits)
        stats = server.endpoint.stats
        loop = asyncio.get_running_loop()
        async with server:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder:
                for _ in range(40):
                    flooder.sendto(SHORT, server.local_address)
                deadline = loop.time() + 10
                while not stats.peers_blocked:
                    assert loop.time() < deadline, "the flooder was never blocked"
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.2)  # what was queued before the block is read
                received = stats.datagrams_received
                for _ in range(200):
                    flooder.sendto(SHORT, server.local_address)
                async with tquic.connect("127.0.0.1", server.local_address[1],
                                         client_config, timeout=10):
                    pass  # the handshake completed beside the blocked flooder
                # The client's few datagrams arrived; none of the flooder's 200 did.
                assert stats.datagrams_received - received < 100
                assert stats.peers_blocked == 1

    asyncio.run(asyncio.wait_for(main(), 30))


def test_token_less_initials_beyond_the_budget_are_dropped_and_counted() -> None:
    filt = kernel_peer_filter(64, initials_per_second=10)
    if filt is None:
        pytest.skip("loading an eBPF socket filter needs root or CAP_BPF")
    server, client = _pair(socket.AF_INET, "127.0.0.1")
    with server, client:
        filt.attach(server)
        server.setblocking(False)
        sent = ([_initial() for _ in range(30)] + [_initial(token=b"tok") for _ in range(30)]
                + [SHORT] * 30 + [b"\xc0\x00\x00\x00\x01\x08abc"] * 5)  # truncated: user space's
        for datagram in sent:
            client.sendto(datagram, server.getsockname())
        received: list[bytes] = []
        deadline = time.monotonic() + 5
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.3:
            try:
                received.append(server.recv(4096))
                quiet_since = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        # One second's burst (10, one more if the sending took over 0.1 s) of token-less
        # Initials passes and the rest is dropped and counted; Initials with a token,
        # short headers and datagrams too short to judge all pass.
        tokenless = [d for d in received if len(d) > 1000 and d[23] == 0]
        assert 10 <= len(tokenless) <= 12
        assert filt.initials_over_budget() == 30 - len(tokenless)
        assert len(received) == len(sent) - filt.initials_over_budget()
    filt.close()

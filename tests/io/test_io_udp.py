"""UDP helpers on loopback: GSO trains arrive as separate datagrams, GRO is split, ECN
marks survive the trip, dual-stack sockets talk to IPv4 and IPv6, pinning works.

A test skips only when the kernel lacks the feature, and says which.
"""

from __future__ import annotations

import os
import select
import socket
import time

import pytest

from tquic.io.udp import (
    ECN_CE,
    ECN_ECT0,
    ECN_ECT1,
    GSO_MAX_SEGMENTS,
    ReceivedDatagram,
    UdpSocket,
    normalize_address,
    resolve,
)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _recv_all(sock: UdpSocket, count: int, timeout: float = 2.0) -> list[ReceivedDatagram]:
    got: list[ReceivedDatagram] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        select.select([sock.fileno()], [], [], max(0.0, deadline - time.monotonic()))
        got.extend(sock.recv())
    return got


def _pair(host: str = "127.0.0.1", *, gso: bool = True, gro: bool = True) -> tuple[UdpSocket, UdpSocket]:
    return UdpSocket.bind(host, 0, gso=gso, gro=gro), UdpSocket.bind(host, 0, gso=gso, gro=gro)


def test_single_datagram_roundtrip_reports_sender_address() -> None:
    a, b = _pair()
    try:
        assert a.send(b"hello", b.local_address)
        [got] = _recv_all(b, 1)
        assert got.data == b"hello"
        assert got.addr == a.local_address
    finally:
        a.close()
        b.close()


def test_gso_train_arrives_as_separate_datagrams_with_short_tail() -> None:
    a, b = _pair(gro=False)
    try:
        if not a.features.gso:
            pytest.skip("kernel lacks UDP_SEGMENT (GSO)")
        payloads = [os.urandom(1200) for _ in range(20)] + [os.urandom(300)]
        assert a.send_batch(payloads, b.local_address) == len(payloads)
        got = _recv_all(b, len(payloads))
        assert [g.data for g in got] == payloads
        assert a.features.gso  # no fallback was needed on loopback
    finally:
        a.close()
        b.close()


def test_batch_of_mixed_sizes_is_split_into_valid_trains() -> None:
    a, b = _pair(gro=False)
    try:
        sizes = [1000, 1000, 500, 1200, 1200, 1200, 80, 1300] + [900] * (GSO_MAX_SEGMENTS + 5)
        payloads = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
        assert a.send_batch(payloads, b.local_address) == len(payloads)
        got = _recv_all(b, len(payloads))
        assert [g.data for g in got] == payloads
    finally:
        a.close()
        b.close()


def test_gso_disabled_falls_back_to_one_datagram_per_call() -> None:
    a, b = _pair(gso=False, gro=False)
    try:
        assert not a.features.gso
        payloads = [os.urandom(1200) for _ in range(10)]
        assert a.send_batch(payloads, b.local_address) == 10
        assert [g.data for g in _recv_all(b, 10)] == payloads
    finally:
        a.close()
        b.close()


def test_gro_coalesced_receive_is_split_by_segment_size() -> None:
    sender, receiver = _pair()
    try:
        if not receiver.features.gro:
            pytest.skip("kernel lacks UDP_GRO")
        if not sender.features.gso:
            pytest.skip("kernel lacks UDP_SEGMENT (GSO), needed to make a GRO train on loopback")
        payloads = [os.urandom(1000) for _ in range(30)] + [b"tail"]
        assert sender.send_batch(payloads, receiver.local_address) == len(payloads)
        got = _recv_all(receiver, len(payloads))
        assert [g.data for g in got] == payloads
        assert all(g.addr == sender.local_address for g in got)
        assert receiver.gro_reads >= 1  # the kernel did coalesce, and we split it
    finally:
        sender.close()
        receiver.close()


@pytest.mark.parametrize("ecn", [ECN_ECT0, ECN_ECT1, ECN_CE])
def test_ecn_codepoint_survives_ipv4_loopback(ecn: int) -> None:
    a, b = _pair()
    try:
        if not b.features.ecn_receive:
            pytest.skip("kernel lacks IP_RECVTOS")
        assert a.send(b"x" * 50, b.local_address, ecn=ecn)
        [got] = _recv_all(b, 1)
        assert got.ecn == ecn
    finally:
        a.close()
        b.close()


def test_ecn_codepoint_on_a_gso_train() -> None:
    a, b = _pair(gro=False)
    try:
        if not (a.features.gso and b.features.ecn_receive):
            pytest.skip("kernel lacks GSO or IP_RECVTOS")
        payloads = [b"y" * 1200] * 5
        assert a.send_batch(payloads, b.local_address, ecn=ECN_ECT0) == 5
        got = _recv_all(b, 5)
        assert [g.ecn for g in got] == [ECN_ECT0] * 5
    finally:
        a.close()
        b.close()


def test_unmarked_datagram_reports_not_ect() -> None:
    a, b = _pair()
    try:
        a.send(b"plain", b.local_address)
        [got] = _recv_all(b, 1)
        assert got.ecn == 0
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_ipv6_loopback_with_ecn() -> None:
    a, b = _pair("::1")
    try:
        assert a.send(b"six", b.local_address, ecn=ECN_ECT0)
        [got] = _recv_all(b, 1)
        assert got.data == b"six" and got.addr == a.local_address
        if b.features.ecn_receive:
            assert got.ecn == ECN_ECT0
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_dual_stack_wildcard_serves_ipv4_and_ipv6_peers() -> None:
    server = UdpSocket.bind("::", 0)
    v4 = UdpSocket.bind("127.0.0.1", 0)
    v6 = UdpSocket.bind("::1", 0)
    try:
        if not server.features.dual_stack:
            pytest.skip("kernel refuses IPV6_V6ONLY=0 (no dual-stack sockets)")
        port = server.local_address[1]
        assert v4.send(b"four", ("127.0.0.1", port), ecn=ECN_ECT0)
        assert v6.send(b"six", ("::1", port), ecn=ECN_ECT0)
        got = _recv_all(server, 2)
        by_data = {g.data: g for g in got}
        assert by_data[b"four"].addr == v4.local_address  # plain IPv4, not ::ffff:
        assert by_data[b"six"].addr == v6.local_address
        if server.features.ecn_receive:
            assert by_data[b"four"].ecn == ECN_ECT0
            assert by_data[b"six"].ecn == ECN_ECT0
        # Replies go out to both families from the one socket, GSO and ECN included.
        assert server.send_batch([b"r4"] * 3, v4.local_address, ecn=ECN_ECT0) == 3
        assert server.send(b"r6", v6.local_address)
        assert [g.data for g in _recv_all(v4, 3)] == [b"r4"] * 3
        assert [g.data for g in _recv_all(v6, 1)] == [b"r6"]
    finally:
        server.close()
        v4.close()
        v6.close()


def test_bind_to_device_pins_the_socket_to_loopback() -> None:
    try:
        pinned = UdpSocket.bind("0.0.0.0", 0, device="lo")
    except PermissionError:
        pytest.skip("SO_BINDTODEVICE needs CAP_NET_RAW here")
    peer = UdpSocket.bind("127.0.0.1", 0)
    try:
        assert pinned.features.bound_device == "lo"
        assert pinned.send(b"pinned", peer.local_address)
        [got] = _recv_all(peer, 1)
        assert got.data == b"pinned"
    finally:
        pinned.close()
        peer.close()


def test_bind_to_unknown_device_is_an_os_error() -> None:
    with pytest.raises(OSError):
        UdpSocket.bind("0.0.0.0", 0, device="no-such-if0")


def test_source_address_binding_is_what_the_peer_sees() -> None:
    a = UdpSocket.bind("127.0.0.2", 0)
    b = UdpSocket.bind("127.0.0.1", 0)
    try:
        a.send(b"src", b.local_address)
        [got] = _recv_all(b, 1)
        assert got.addr[0] == "127.0.0.2"
    finally:
        a.close()
        b.close()


def test_send_to_a_closed_port_is_not_an_exception() -> None:
    a = UdpSocket.bind("127.0.0.1", 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()
    try:
        for _ in range(3):
            a.send(b"nobody", dead)
            time.sleep(0.01)
            assert a.recv() == []  # the ICMP error is swallowed, not raised
    finally:
        a.close()


def test_full_socket_buffer_reports_partial_send() -> None:
    a = UdpSocket.bind("127.0.0.1", 0)
    b = UdpSocket.bind("127.0.0.1", 0)
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        total = 0
        payloads = [b"z" * 1400] * 64
        for _ in range(200):
            sent = a.send_batch(payloads, b.local_address)
            total += sent
            if sent < len(payloads):
                break
        # Either the kernel pushed back (partial count) or loopback drained everything;
        # in both cases no exception and a count within bounds.
        assert 0 <= total <= 200 * 64
    finally:
        a.close()
        b.close()


def test_normalize_and_resolve() -> None:
    assert normalize_address(("::ffff:10.0.0.1", 5, 0, 0)) == ("10.0.0.1", 5)
    assert normalize_address(("::1", 5, 0, 0)) == ("::1", 5)
    assert resolve("127.0.0.1", 4433) == ("127.0.0.1", 4433)
    assert resolve("localhost", 4433)[1] == 4433


def test_resolve_async_answers_a_literal_without_a_thread() -> None:
    import asyncio
    import threading

    from tquic.io.udp import resolve_async

    async def main() -> tuple[object, object, int]:
        before = threading.active_count()
        v4 = await resolve_async("127.0.0.1", 4433)
        v6 = await resolve_async("::1", 443)
        return v4, v6, threading.active_count() - before

    v4, v6, new_threads = asyncio.run(main())
    assert v4 == ("127.0.0.1", 4433) and v6 == ("::1", 443)
    assert new_threads == 0  # no executor worker: nothing for asyncio.run to join at exit

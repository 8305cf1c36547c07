"""Several workers on one port (SO_REUSEPORT + the cBPF steering program): every packet
of a connection reaches the worker whose QUIC-LB connection IDs it carries -- also
after the client migrates to a new address, which 4-tuple hashing alone would break."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time

import pytest

import tquic
from tquic.cli.hq import HqServer, generated_body
from tquic.core.config import QuicConfiguration
from tquic.io.udp import UdpSocket
from tquic.io.workers import reuseport_group, steering_program
from tquic.wire.quic_lb import QuicLbConfig, QuicLbEncoder, worker_of

LB = QuicLbConfig(server_id=b"\x07", nonce_length=6)


def _group(workers: int) -> list[UdpSocket]:
    sockets, steered = reuseport_group("127.0.0.1", 0, workers, LB.cid_length)
    if not steered:
        for sock in sockets:
            sock.close()
        pytest.skip("the kernel refused SO_ATTACH_REUSEPORT_CBPF")
    return sockets


def _drain(sock: UdpSocket) -> list[bytes]:
    time.sleep(0.05)
    return [d.data for d in sock.recv(256)]


def test_short_headers_reach_the_worker_in_their_cid() -> None:
    sockets = _group(3)
    encoders = [QuicLbEncoder(LB, worker=w) for w in range(3)]
    port = sockets[0].local_address[1]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            for i in range(60):
                client.sendto(b"\x40" + encoders[i % 3].generate() + os.urandom(40),
                              ("127.0.0.1", port))
            for index, sock in enumerate(sockets):
                received = _drain(sock)
                assert len(received) == 20
                assert {worker_of(d[1:1 + LB.cid_length], 3) for d in received} == {index}
    finally:
        for sock in sockets:
            sock.close()


def test_long_headers_from_one_address_stay_on_one_worker() -> None:
    sockets = _group(2)
    port = sockets[0].local_address[1]
    try:
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
        for n, sender in enumerate(senders):
            for _ in range(4):  # different DCIDs, one 4-tuple
                initial = b"\xc0\x00\x00\x00\x01\x08" + os.urandom(8) + bytes((n,)) + bytes(60)
                sender.sendto(initial, ("127.0.0.1", port))
        by_sender = [set[int]() for _ in senders]
        for index, sock in enumerate(sockets):
            for data in _drain(sock):
                by_sender[data[14]].add(index)
        assert all(len(workers) == 1 for workers in by_sender)
        assert {w for workers in by_sender for w in workers} == {0, 1}  # spread over both
        for sender in senders:
            sender.close()
    finally:
        for sock in sockets:
            sock.close()


def test_steering_program_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="workers"):
        steering_program(33, 8)
    with pytest.raises(ValueError, match="cid_length"):
        steering_program(2, 21)


def test_two_workers_serve_connections_that_migrate(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        sockets = _group(2)
        servers = []
        for index, sock in enumerate(sockets):
            config = dataclasses.replace(
                server_config, connection_id_length=LB.cid_length,
                connection_id_generator=QuicLbEncoder(LB, worker=index))
            servers.append(await tquic.serve("127.0.0.1", 0, config, HqServer(None),
                                             sock=sock))
        port = sockets[0].local_address[1]
        try:
            for _ in range(6):
                async with tquic.connect("127.0.0.1", port, client_config) as conn:
                    reader, writer = await conn.open_stream()
                    writer.write(b"GET /3000\r\n")
                    writer.write_eof()
                    assert await reader.read() == generated_body(3000)
                    await conn.migrate("127.0.0.1")  # a new 4-tuple: only the CID routes
                    reader, writer = await conn.open_stream()
                    writer.write(b"GET /5000\r\n")
                    writer.write_eof()
                    assert await reader.read() == generated_body(5000)
            stats = [server.endpoint.stats for server in servers]
            assert sum(s.connections_accepted for s in stats) == 6
            assert all(s.stateless_resets_sent == 0 for s in stats)  # nothing misrouted
        finally:
            for server in servers:
                server.close()

    asyncio.run(asyncio.wait_for(main(), 30))

"""A wildcard server socket learns each datagram's destination and answers from it (pktinfo).

On a host with several addresses, the kernel picks an answer's source from
the route back unless told otherwise; RFC 9000 §9 has the client discard
packets from an address it did not send to.  Loopback has every 127/8
address, so 127.0.0.2 stands for a second address of the server.
"""

from __future__ import annotations

import socket
import sys
import time

import pytest

from tquic.io.udp import ReceivedDatagram, UdpSocket

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="IP_PKTINFO is Linux's (the fallback is the kernel's pick)")


def _recv(sock: UdpSocket, deadline: float = 2.0) -> list[ReceivedDatagram]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        got = sock.recv()
        if got:
            return got
        time.sleep(0.005)
    return []


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_socket_reports_the_address_each_datagram_was_sent_to(host: str) -> None:
    server = UdpSocket.bind(host, 0, pktinfo=True)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.bind(("127.0.0.1", 0))
        for target in ("127.0.0.1", "127.0.0.2"):
            client.sendto(b"x", (target, server.local_address[1]))
            got = _recv(server)
            assert [d.local for d in got] == [target]
    finally:
        server.close()
        client.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_socket_answers_from_the_address_the_peer_sent_to(host: str) -> None:
    server = UdpSocket.bind(host, 0, pktinfo=True)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2.0)
    try:
        client.bind(("127.0.0.1", 0))
        client.sendto(b"ping", ("127.0.0.2", server.local_address[1]))
        [datagram] = _recv(server)
        # GSO trains carry the cmsg too: two equal datagrams in one send.
        assert server.send_batch([b"a" * 100, b"b" * 100], datagram.addr,
                                 source=datagram.local) == 2
        for _ in range(2):
            _, source = client.recvfrom(2000)
            assert source == ("127.0.0.2", server.local_address[1])
    finally:
        server.close()
        client.close()


def test_without_pktinfo_a_socket_reports_no_destination() -> None:
    # Client sockets and specific addresses do not pay for the cmsg.
    for sock in (UdpSocket.bind("0.0.0.0", 0), UdpSocket.bind("127.0.0.1", 0, pktinfo=True)):
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            peer.sendto(b"x", ("127.0.0.1", sock.local_address[1]))
            assert [d.local for d in _recv(sock)] == [None]
        finally:
            sock.close()
            peer.close()

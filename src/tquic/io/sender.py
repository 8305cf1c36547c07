"""The send side of a QUIC endpoint: the engine's datagrams onto the right UDP socket.

A connection's ``flush`` hands over the datagrams its engine built, each with
its :class:`~tquic.paths.network_path.NetworkPath`.  :class:`DatagramSender`
sends the datagrams of each path, in their order, in as few syscalls as the
socket allows (GSO, ``tquic.io.udp``): a multipath scheduler interleaves paths
packet by packet, and a GSO train needs one peer, so the datagrams are grouped
by path first (the paths are different links: their relative order within
one flush carries no meaning).  Each leaves from the socket bound to the path's local
address, or from a wildcard server socket with that address as the source
(IP_PKTINFO: RFC 9000 §9, the server answers from the address it was sent to).

When the kernel's socket buffer is full the rest waits in a queue per socket,
sent when the socket becomes writable.  The queue is bounded
(``EndpointLimits.send_queue_datagrams``): beyond it datagrams are dropped and
counted, and QUIC's loss recovery resends what mattered (RFC 9002).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from tquic.io.udp import UdpSocket
from tquic.paths.network_path import Address, NetworkPath

if TYPE_CHECKING:
    from tquic.io.endpoint_stats import EndpointStats

# One queued GSO batch: (datagrams, peer, ECN codepoint, source address or None).
_Queued = tuple[list[bytes], Address, int, str | None]


class DatagramSender:
    """Sends for one endpoint through its sockets (the first is the default)."""

    __slots__ = ("_by_local", "_default", "_limit", "_loop", "_pending", "closed", "stats")

    def __init__(self, loop: asyncio.AbstractEventLoop, stats: EndpointStats,
                 queue_limit: int, sockets: list[UdpSocket]) -> None:
        self._loop = loop
        self.stats = stats  # the endpoint's counters: datagrams_sent, send_queue_overflows
        self._limit = queue_limit
        self._default = sockets[0]
        self._by_local: dict[Address, UdpSocket] = {s.local_address: s for s in sockets}
        self._pending: dict[UdpSocket, deque[_Queued]] = {}
        self.closed = False

    def add_socket(self, sock: UdpSocket) -> None:
        self._by_local[sock.local_address] = sock

    def remove_socket(self, sock: UdpSocket, default: UdpSocket) -> None:
        """Stop sending through ``sock`` (its queue is dropped); ``default``: the socket
        for paths whose address no socket has, from now on."""
        if self._by_local.get(sock.local_address) is sock:
            del self._by_local[sock.local_address]
        self._default = default
        if self._pending.pop(sock, None) is not None:
            self._loop.remove_writer(sock.fileno())

    def close(self) -> None:
        """Drop every queue and stop waiting for writability (the sockets are closed next)."""
        self.closed = True
        for sock in self._pending:
            self._loop.remove_writer(sock.fileno())
        self._pending.clear()

    def send_datagrams(self, datagrams: list[tuple[bytes, NetworkPath]],
                       ecn: Callable[[NetworkPath], int] | None = None) -> None:
        """Send the engine's datagrams, one GSO batch per path (module docstring).

        ``ecn`` gives the ECN codepoint of a path's datagrams (the engine's
        ``ecn_codepoint``, RFC 9000 §13.4.2); a GSO batch shares one cmsg, and the
        datagrams of one path share one codepoint.
        """
        if self.closed:
            return
        by_local = self._by_local
        total = len(datagrams)
        if total == 1:  # a paced sender's usual flush: no grouping to do
            data, path = datagrams[0]
            sock = by_local.get(path.local)
            self.send(sock or self._default, [data], path.remote,
                      ecn(path) if ecn is not None else 0,
                      None if sock is not None else path.local[0])
            return
        for path, batch in _by_path(datagrams):
            local = path.local
            sock = by_local.get(local)
            # Not a socket's own address: a wildcard socket's, learnt from IP_PKTINFO;
            # answer from it (the datagram's source is the address the peer sent to).
            source = None if sock is not None else local[0]
            self.send(sock or self._default, batch, path.remote,
                      ecn(path) if ecn is not None else 0, source)

    def send(self, sock: UdpSocket, batch: list[bytes], remote: Address, ecn: int = 0,
             source: str | None = None) -> None:
        """``batch`` to ``remote`` through ``sock`` now, or queued behind what waits."""
        queue = self._pending.get(sock)
        if queue is not None:
            self._enqueue(queue, batch, remote, ecn, source)
            return
        sent = sock.send_batch(batch, remote, ecn, source)
        self.stats.datagrams_sent += sent
        if sent < len(batch):
            queue = deque()
            self._pending[sock] = queue
            self._enqueue(queue, batch[sent:], remote, ecn, source)
            self._loop.add_writer(sock.fileno(), self._on_writable, sock)

    def _enqueue(self, queue: deque[_Queued], batch: list[bytes], remote: Address, ecn: int,
                 source: str | None) -> None:
        queued = sum(len(item[0]) for item in queue)
        room = self._limit - queued
        if room < len(batch):
            # Bounded: beyond the limit datagrams are dropped; loss recovery resends.
            self.stats.send_queue_overflows += len(batch) - max(room, 0)
            batch = batch[:max(room, 0)]
        if batch:
            queue.append((batch, remote, ecn, source))

    def _on_writable(self, sock: UdpSocket) -> None:
        queue = self._pending.get(sock)
        while queue:
            batch, remote, ecn, source = queue[0]
            sent = sock.send_batch(batch, remote, ecn, source)
            self.stats.datagrams_sent += sent
            if sent < len(batch):
                queue[0] = (batch[sent:], remote, ecn, source)
                return
            queue.popleft()
        self._pending.pop(sock, None)
        self._loop.remove_writer(sock.fileno())


def _by_path(datagrams: list[tuple[bytes, NetworkPath]]) -> list[tuple[NetworkPath, list[bytes]]]:
    """The datagrams of each path in their order, paths in order of first appearance
    (a connection has a few paths: a list scan, identity first, beats hashing)."""
    groups: list[tuple[NetworkPath, list[bytes]]] = []
    current: NetworkPath | None = None
    batch: list[bytes] = []
    for data, path in datagrams:
        if path is not current:
            for known, known_batch in groups:
                if known is path or known == path:
                    batch = known_batch
                    break
            else:
                batch = []
                groups.append((path, batch))
            current = path
        batch.append(data)
    return groups

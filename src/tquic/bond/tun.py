"""Packet devices: the kernel's TUN, and a UDP stand-in for tests without root.

A :class:`TunDevice` is ``/dev/net/tun`` opened with ``IFF_TUN | IFF_NO_PI``
(layer-3 packets, no 4-byte packet-information header): each ``read`` is one
IP packet the kernel routed into the interface, each ``write`` one packet the
kernel receives from it.  The device is not persistent, so closing the file
descriptor deletes the interface together with its addresses and routes —
the clean teardown SIGTERM needs, even if the process dies.

A :class:`UdpPacketDevice` carries the same packets as UDP datagrams on
loopback (one packet per datagram), so the daemons' whole data path runs in a
test that has no root and no TUN.

Both read until the queue is empty (at most 64 packets per wake-up) and hand the
batch over at once; a batch's pure TCP ACKs that a later one of the same flow
supersedes are dropped first (``tquic.bond.ack_filter``, RFC 3449 §5.2.1;
counted in ``acks_filtered``, off with ``filter_acks=False``).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from tquic.bond.ack_filter import filter_acks as _filter_acks

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
_BATCH = 64  # packets read per wake-up, at most

OnPackets = Callable[[list[bytes]], None]


class PacketDevice(Protocol):
    """Where the tunnel's IP packets enter and leave the host."""

    name: str

    def start(self, on_packets: OnPackets) -> None: ...

    def write(self, packet: bytes) -> None: ...

    def poll(self) -> None:
        """Read now what is queued, if anything was written since the last poll
        (the kernel's synchronous answers to what was written)."""

    def close(self) -> None: ...


def poll_on_flush(device: object, protocol: object) -> Callable[[], None] | None:
    """Have the device's ``poll`` run in each flush of ``protocol`` (a
    QuicConnectionProtocol: ``add_flush_listener``), so the kernel's synchronous answers
    to what the tunnel wrote leave in that same flush; returns it, for
    ``remove_flush_listener`` (None: a device or a connection without the hook)."""
    poll: Callable[[], None] | None = getattr(device, "poll", None)
    add = getattr(protocol, "add_flush_listener", None)
    if poll is None or add is None:
        return None
    add(poll)
    return poll


class TunError(OSError):
    """The TUN device cannot be created; the message says why and what to do."""


class TunDevice:
    """A layer-3 TUN interface named ``name`` (created on open, gone on close)."""

    def __init__(self, name: str, *, filter_acks: bool = True) -> None:
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            hint = (" (load the tun module, or run in a container with /dev/net/tun)"
                    if exc.errno == errno.ENOENT else " (needs root or CAP_NET_ADMIN)")
            raise TunError(exc.errno, f"cannot open /dev/net/tun: {exc.strerror}{hint}") from None
        try:
            ifr = struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI)
            result = fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            hint = " (an interface of that name exists)" if exc.errno == errno.EBUSY else ""
            raise TunError(exc.errno, f"cannot create TUN {name!r}: {exc.strerror}{hint}") from None
        self.name = result[:16].rstrip(b"\x00").decode()
        self._fd = fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_packets: OnPackets | None = None
        self._filter_acks = filter_acks
        self._written = False  # a write since the last poll
        self.write_drops = 0
        self.acks_filtered = 0

    def fileno(self) -> int:
        return self._fd

    def start(self, on_packets: OnPackets) -> None:
        self._on_packets = on_packets
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        packets: list[bytes] = []
        read = os.read
        fd = self._fd
        try:
            for _ in range(_BATCH):
                packets.append(read(fd, 65536))
        except BlockingIOError:
            pass
        except OSError:
            pass  # the device went away (closing); nothing to deliver
        if len(packets) > 1 and self._filter_acks:
            packets, dropped = _filter_acks(packets)
            self.acks_filtered += dropped
        if packets and self._on_packets is not None:
            self._on_packets(packets)

    def write(self, packet: bytes) -> None:
        self._written = True
        try:
            os.write(self._fd, packet)
        except OSError:  # EAGAIN (queue full), EINVAL (not an IP packet), EIO (link down)
            self.write_drops += 1

    def poll(self) -> None:
        """Read at once what the kernel queued since the last writes: a TCP receiver
        acknowledges within the write that delivered its data (RFC 9293 §3.8.6.3: an
        ACK per two full segments), so the ACK is read and sent in the same flush as
        the QUIC ACKs of the batch instead of on the next wake-up (the endpoint calls
        this through ``add_flush_listener``)."""
        if self._written:
            self._written = False
            if self._fd >= 0:
                self._readable()

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1


class UdpPacketDevice:
    """IP packets as UDP datagrams between ``local`` and ``peer`` (tests, no root needed)."""

    def __init__(self, name: str, local: tuple[str, int] = ("127.0.0.1", 0),
                 peer: tuple[str, int] | None = None, *, filter_acks: bool = True) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(local)
        self.local_address: tuple[str, int] = self.sock.getsockname()
        self.peer = peer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_packets: OnPackets | None = None
        self._filter_acks = filter_acks
        self.write_drops = 0
        self.acks_filtered = 0

    def start(self, on_packets: OnPackets) -> None:
        self._on_packets = on_packets
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        packets: list[bytes] = []
        try:
            for _ in range(_BATCH):
                data, addr = self.sock.recvfrom(65536)
                if self.peer is None:
                    self.peer = addr  # the harness's address: answer there
                packets.append(data)
        except OSError:
            pass
        if len(packets) > 1 and self._filter_acks:
            packets, dropped = _filter_acks(packets)
            self.acks_filtered += dropped
        if packets and self._on_packets is not None:
            self._on_packets(packets)

    def poll(self) -> None:
        """Nothing to do: a loopback harness answers asynchronously."""

    def write(self, packet: bytes) -> None:
        if self.peer is None:
            self.write_drops += 1
            return
        try:
            self.sock.sendto(packet, self.peer)
        except OSError:
            self.write_drops += 1

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

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

A :class:`TunDevice` is opened with ``IFF_VNET_HDR`` where the kernel has it
(``offload=False``: never): its writes wait for :meth:`TunDevice.poll` (the
daemons run it in each flush of the connection) or the end of the loop iteration,
and go together, consecutive TCP segments of a flow glued into one write
(``tquic.bond.tun_gro``): on a download, one write and one pass through the
kernel's TCP per batch instead of per packet, and one ACK back per batch.
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
from tquic.bond.tun_gro import F_NEEDS_CSUM, PLAIN, VNET_HDR_LEN, coalesce, complete_checksum

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
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

    def __init__(self, name: str, *, filter_acks: bool = True, offload: bool = True) -> None:
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            hint = (" (load the tun module, or run in a container with /dev/net/tun)"
                    if exc.errno == errno.ENOENT else " (needs root or CAP_NET_ADMIN)")
            raise TunError(exc.errno, f"cannot open /dev/net/tun: {exc.strerror}{hint}") from None
        attempts = [IFF_TUN | IFF_NO_PI | IFF_VNET_HDR] if offload else []
        attempts.append(IFF_TUN | IFF_NO_PI)
        for flags in attempts:
            try:
                result = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
                break
            except OSError as exc:
                if flags & IFF_VNET_HDR and exc.errno == errno.EINVAL:
                    continue  # a kernel without virtio-net headers on TUN: plain packets
                os.close(fd)
                hint = " (an interface of that name exists)" if exc.errno == errno.EBUSY else ""
                raise TunError(exc.errno,
                               f"cannot create TUN {name!r}: {exc.strerror}{hint}") from None
        self.offload = bool(flags & IFF_VNET_HDR)
        self.name = result[:16].rstrip(b"\x00").decode()
        self._fd = fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_packets: OnPackets | None = None
        self._filter_acks = filter_acks
        self._written = False  # a write since the last poll
        self._pending: list[bytes] = []  # offload: written, not yet handed to the kernel
        self._flush_handle: asyncio.Handle | None = None
        self.writes = 0  # write syscalls
        self.packets_written = 0
        self.offload_drops = 0  # reads with an offload we never enabled (none expected)
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
            if self.offload:
                for _ in range(_BATCH):
                    data = read(fd, 65536 + VNET_HDR_LEN)
                    if data[0] & F_NEEDS_CSUM or data[1]:
                        packet = self._unoffload(data)
                        if packet is not None:
                            packets.append(packet)
                    else:
                        packets.append(data[VNET_HDR_LEN:])
            else:
                for _ in range(_BATCH):
                    packets.append(read(fd, 65536))
        except BlockingIOError:
            pass
        except (OSError, IndexError):
            pass  # the device went away (closing), or an empty read: nothing more now
        if len(packets) > 1 and self._filter_acks:
            packets, dropped = _filter_acks(packets)
            self.acks_filtered += dropped
        if packets and self._on_packets is not None:
            self._on_packets(packets)

    def _unoffload(self, data: bytes) -> bytes | None:
        """A read whose virtio-net header asks for work: a partial checksum is completed;
        a segmentation offload (never enabled: no TUNSETOFFLOAD) is dropped, counted."""
        if data[1]:
            self.offload_drops += 1
            return None
        start, offset = struct.unpack_from("=HH", data, 6)
        packet = bytearray(data[VNET_HDR_LEN:])
        if start + offset + 2 > len(packet):
            self.offload_drops += 1
            return None
        complete_checksum(packet, start, offset)
        return bytes(packet)

    def write(self, packet: bytes) -> None:
        """Hand ``packet`` to the kernel; with offload, at the next ``poll`` (or at the
        end of this loop iteration), glued to the others written meanwhile."""
        self._written = True
        if not self.offload or self._loop is None:
            self._write(PLAIN, packet)
            return
        pending = self._pending
        pending.append(packet)
        if len(pending) == 1 and self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _write(self, header: bytes, packet: bytes) -> None:
        try:
            if self.offload:
                os.writev(self._fd, (header, packet))
            else:
                os.write(self._fd, packet)
            self.writes += 1
            self.packets_written += 1
        except OSError:  # EAGAIN (queue full), EINVAL (not an IP packet), EIO (link down)
            self.write_drops += 1

    def _flush(self) -> None:
        """The pending packets into the kernel, consecutive TCP segments glued
        (tquic.bond.tun_gro)."""
        handle, self._flush_handle = self._flush_handle, None
        if handle is not None:
            handle.cancel()
        packets, self._pending = self._pending, []
        if not packets or self._fd < 0:
            return
        writev = os.writev
        fd = self._fd
        for buffers in coalesce(packets):
            segments = len(buffers) - 1
            try:
                writev(fd, buffers)
                self.writes += 1
                self.packets_written += segments
            except OSError:  # as in _write
                self.write_drops += segments

    def poll(self) -> None:
        """Hand over what was written, then read at once what the kernel queued in
        answer: a TCP receiver acknowledges within the write that delivered its data
        (RFC 9293 §3.8.6.3: an ACK per two full segments), so the ACK is read and sent
        in the same flush as the QUIC ACKs of the batch instead of on the next wake-up
        (the daemons call this through ``add_flush_listener``)."""
        if self._written:
            self._written = False
            if self._pending:
                self._flush()
            if self._fd >= 0:
                self._readable()

    def close(self) -> None:
        if self._fd < 0:
            return
        self._flush()
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

"""UDP sockets for QUIC with the Linux kernel's help, and clean fallbacks.

What the kernel can do for a QUIC endpoint, each probed once per socket and
used only when it works:

- **GSO** (``UDP_SEGMENT``, Linux 4.18): one ``sendmsg`` carries a train of
  equal-size datagrams (the last may be shorter); the kernel cuts it.  The
  segment size travels in a per-call ``SOL_UDP/UDP_SEGMENT`` cmsg, so one
  socket can send trains of different sizes to different peers.
- **GRO** (``UDP_GRO``, Linux 5.0): the kernel may hand us several datagrams
  of one flow glued together, with their size in a ``UDP_GRO`` cmsg; we cut
  them apart again.
- **ECN** (RFC 9000 §13.4): the codepoint of each received datagram comes in
  an ``IP_TOS`` / ``IPV6_TCLASS`` cmsg once ``IP_RECVTOS`` /
  ``IPV6_RECVTCLASS`` is on; we mark outgoing datagrams with the same cmsgs.
- **Pinning** a socket to an interface (``SO_BINDTODEVICE``) or a source
  address, so a multipath path leaves through the link it is meant for.
- **Source address on a wildcard socket** (``IP_PKTINFO``/``IPV6_PKTINFO``,
  server sockets only): a server bound to ``0.0.0.0``/``::`` on a host with
  several addresses learns which one each datagram was sent to and answers
  from that one; otherwise the kernel picks the source from the route back,
  and a client that reached the server's first address through a second link
  gets answers from the second link's address, which RFC 9000 §9 makes it
  discard.
- **Dual stack**: an IPv6 socket with ``IPV6_V6ONLY`` off takes IPv4 peers as
  ``::ffff:a.b.c.d``; addresses are reported in plain IPv4 form.

When a feature is missing (an old kernel, a platform that is not Linux, a
device without checksum offload that rejects GSO with EIO) the socket falls
back to one datagram per syscall and says so in :attr:`UdpSocket.features`.
Nothing here raises for a datagram the network sent: receive errors are
reported as "nothing received".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from tquic.paths.network_path import Address

logger = logging.getLogger("tquic.io.udp")

# Linux constants the socket module does not always name (include/uapi/linux/udp.h, in.h, in6.h).
SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
IP_TOS = getattr(socket, "IP_TOS", 1)
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
_WILDCARDS = ("0.0.0.0", "::", "")

# The kernel accepts at most 64 segments per GSO send (UDP_MAX_SEGMENTS) and a
# UDP payload of at most 65507 bytes over IPv4 (65535 - 20 - 8).
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65507
RECV_BUFFER_SIZE = 65535  # one GRO super-datagram at most
SOCKET_BUFFER_SIZE = 4 << 20
_PEER_CACHE_SIZE = 1024  # normalized peer addresses remembered per socket
_PLAN_CACHE_SIZE = 1024  # (peer, ECN, source) -> (kernel address, cmsgs) per socket

ECN_NOT_ECT = 0
ECN_ECT1 = 1
ECN_ECT0 = 2
ECN_CE = 3

_INT = struct.Struct("=i")
_U16 = struct.Struct("=H")


@dataclass(frozen=True, slots=True)
class UdpFeatures:
    """Which kernel features this socket uses (False: probed and unavailable, or disabled)."""

    gso: bool
    gro: bool
    ecn_receive: bool
    ecn_send: bool
    dual_stack: bool
    bound_device: str | None


@dataclass(slots=True)
class ReceivedDatagram:
    """One datagram as the network delivered it."""

    data: bytes
    addr: Address
    ecn: int  # the two ECN bits of the IP header (0 when unknown)
    local: str | None = None  # the address it was sent to (wildcard sockets with pktinfo)


# One ReceivedDatagram per datagram received: a plain slots dataclass, since a frozen
# one pays an object.__setattr__ call per field.  Nothing modifies one once built.
_received = ReceivedDatagram


def normalize_address(addr: tuple[object, ...]) -> Address:
    """(host, port) with IPv4-mapped IPv6 hosts in plain IPv4 form and no scope/flow fields."""
    host = str(addr[0])
    port = int(str(addr[1]))
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return (host, port)


def _is_ipv6_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).version == 6
    except ValueError:
        return False


def _mapped(host: str) -> str:
    """The form a dual-stack IPv6 socket wants for an IPv4 host."""
    return host if _is_ipv6_host(host) else f"::ffff:{host}"


def _is_address_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def resolve(host: str, port: int, *, prefer_ipv6: bool = False) -> Address:
    """Resolve ``host`` to a numeric (host, port); raises OSError when it cannot."""
    if _is_address_literal(host):
        return (host, port)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    infos.sort(key=lambda info: (info[0] == socket.AF_INET6) != prefer_ipv6)
    return normalize_address(infos[0][4])


async def resolve_async(host: str, port: int) -> Address:
    """:func:`resolve` without blocking the event loop: a name in the loop's default
    executor, an address literal at once.  (The executor costs a worker thread, and
    ``asyncio.run`` joins it at exit: 3-25 ms after a client's last byte, measured on
    a loaded machine, for the resolution of "127.0.0.1".)"""
    if _is_address_literal(host):
        return (host, port)
    return await asyncio.get_running_loop().run_in_executor(None, resolve, host, port)


class UdpSocket:
    """A non-blocking UDP socket with batched sends (GSO) and receives (GRO).

    Build one with :meth:`bind`.  ``send``/``send_batch`` return the number of
    datagrams the kernel took; the caller queues the rest and waits for the
    socket to become writable (the asyncio endpoint does).
    """

    __slots__ = (
        "_ancbufsize",
        "_ecn_level",
        "_ecn_option",
        "_gso",
        "_peers",
        "_pktinfo",
        "_plans",
        "family",
        "features",
        "gro_reads",
        "local_address",
        "sock",
    )

    def __init__(self, sock: socket.socket, *, gso: bool = True, gro: bool = True,
                 ecn: bool = True, bound_device: str | None = None,
                 pktinfo: bool = False) -> None:
        self.sock = sock
        self.family = sock.family
        # Raw socket address -> normalized Address, so a datagram from a known peer
        # costs a dict lookup, not a normalization.
        self._peers: dict[object, Address] = {}
        # (peer, ECN codepoint, source) -> (the address sendmsg wants, the cmsgs): built
        # once per peer, not per send (parsing the host to tell IPv4 from IPv6 and
        # packing a pktinfo cost ~4 % of a busy server's CPU when done per batch).
        self._plans: dict[tuple[Address, int, str | None],
                          tuple[tuple[str, int], list[tuple[int, int, bytes]]]] = {}
        sock.setblocking(False)
        dual_stack = False
        if self.family == socket.AF_INET6:
            try:
                dual_stack = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
            except OSError:
                dual_stack = False
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):  # a cap below ours is fine
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_SIZE)
        self._gso = gso and self._probe(SOL_UDP, UDP_SEGMENT, 0)
        gro_on = gro and self._probe(SOL_UDP, UDP_GRO, 1)
        ecn_receive = False
        if ecn:
            if self.family == socket.AF_INET6:
                ecn_receive = self._probe(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
                if dual_stack:
                    # IPv4 datagrams on a dual-stack socket report IP_TOS, not IPV6_TCLASS.
                    self._probe(socket.IPPROTO_IP, IP_RECVTOS, 1)
            else:
                ecn_receive = self._probe(socket.IPPROTO_IP, IP_RECVTOS, 1)
        self._ecn_level, self._ecn_option = (
            (socket.IPPROTO_IPV6, IPV6_TCLASS) if self.family == socket.AF_INET6
            else (socket.IPPROTO_IP, IP_TOS)
        )
        # Sending an ECN cmsg is tried on the first marked send; see _send_one.
        self.features = UdpFeatures(
            gso=self._gso, gro=gro_on, ecn_receive=ecn_receive, ecn_send=ecn,
            dual_stack=dual_stack, bound_device=bound_device,
        )
        self.local_address = normalize_address(sock.getsockname())
        # Only a wildcard socket needs to learn its datagrams' destination address.
        self._pktinfo = pktinfo and self.local_address[0] in _WILDCARDS and (
            self._probe(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            if self.family == socket.AF_INET6 else False)
        if pktinfo and self.local_address[0] in _WILDCARDS and (
                self.family == socket.AF_INET or dual_stack):
            # IPv4 datagrams (also on a dual-stack socket) report IP_PKTINFO.
            self._pktinfo = self._probe(socket.IPPROTO_IP, IP_PKTINFO, 1) or self._pktinfo
        # GRO, TOS and TCLASS (an int each) and one in6_pktinfo (20 bytes) at most.
        self._ancbufsize = socket.CMSG_SPACE(_INT.size) * 4 + socket.CMSG_SPACE(20)
        self.gro_reads = 0  # receives that carried several coalesced datagrams

    # -- construction -----------------------------------------------------------------

    @classmethod
    def bind(cls, host: str = "::", port: int = 0, *, device: str | None = None,
             reuse_port: bool = False, gso: bool = True, gro: bool = True,
             ecn: bool = True, pktinfo: bool = False) -> UdpSocket:
        """Bind a UDP socket to ``host:port``.

        ``host`` "::" (the default) is a dual-stack wildcard, falling back to
        "0.0.0.0" where IPv6 is off; a specific address pins the source
        address; ``device`` pins the interface (SO_BINDTODEVICE, needs
        CAP_NET_RAW on older kernels; raises OSError when refused).
        ``pktinfo`` (servers): on a wildcard address, report each datagram's
        destination address (``ReceivedDatagram.local``) so that the answer can
        leave from it (``send_batch(source=)``).
        """
        family = socket.AF_INET6 if (host in ("", "::") or _is_ipv6_host(host)) else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError:
            if host not in ("", "::"):
                raise
            family, host = socket.AF_INET, "0.0.0.0"
            sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6 and host in ("", "::"):
                try:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                except OSError:
                    logger.debug("dual-stack sockets unavailable; IPv6 only")
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if device is not None:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return cls(sock, gso=gso, gro=gro, ecn=ecn, bound_device=device, pktinfo=pktinfo)

    def _probe(self, level: int, option: int, value: int) -> bool:
        try:
            self.sock.setsockopt(level, option, value)
        except OSError:
            logger.debug("socket option %d/%d unavailable", level, option)
            return False
        return True

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def disable_gso(self) -> None:
        """Stop using GSO (e.g. after the device refused it)."""
        self._gso = False
        self.features = _replace_features(self.features, gso=False)

    def _plan(self, addr: Address, ecn: int, source: str | None
              ) -> tuple[tuple[str, int], list[tuple[int, int, bytes]]]:
        """The kernel's form of ``addr`` and the cmsgs of a send to it (cached)."""
        key = (addr, ecn, source)
        plan = self._plans.get(key)
        if plan is None:
            cmsgs = self._ecn_cmsg(ecn, addr)
            if source is not None and self._pktinfo:
                cmsgs = [*cmsgs, _pktinfo_cmsg(source, addr)]
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()  # bounded: many peers only cost a rebuild
            plan = self._plans[key] = (self._target(addr), cmsgs)
        return plan

    def _target(self, addr: Address) -> tuple[str, int]:
        if self.family == socket.AF_INET6 and self.features.dual_stack:
            return (_mapped(addr[0]), addr[1])
        return addr

    def _ecn_cmsg(self, ecn: int, addr: Address) -> list[tuple[int, int, bytes]]:
        if not ecn or not self.features.ecn_send:
            return []
        if self.family == socket.AF_INET6 and not _is_ipv6_host(addr[0]):
            # IPv4 peer on a dual-stack socket: the kernel reads IP_TOS.
            return [(socket.IPPROTO_IP, IP_TOS, _INT.pack(ecn))]
        return [(self._ecn_level, self._ecn_option, _INT.pack(ecn))]

    # -- sending ----------------------------------------------------------------------

    def send(self, data: bytes, addr: Address, ecn: int = ECN_NOT_ECT) -> bool:
        """Send one datagram; False when the socket buffer is full (try again later)."""
        target, cmsgs = self._plan(addr, ecn, None)
        return self._sendmsg([data], target, cmsgs)

    def send_batch(self, datagrams: Sequence[bytes], addr: Address,
                   ecn: int = ECN_NOT_ECT, source: str | None = None) -> int:
        """Send datagrams to one peer, as few syscalls as GSO allows.

        Returns how many were sent (in order); fewer than ``len(datagrams)``
        means the socket buffer filled up.  A datagram the kernel refuses for
        another reason (too big, unreachable) is dropped and counted as sent:
        QUIC's loss recovery owns that case.  ``source``: the local address to
        send from, on a wildcard socket bound with ``pktinfo`` (else ignored).
        """
        target, cmsgs = self._plan(addr, ecn, source)
        total = len(datagrams)
        if total == 1 or not self._gso:
            # One datagram per call: the common case of a paced sender.
            for sent, datagram in enumerate(datagrams):
                if not self._sendmsg([datagram], target, cmsgs):
                    return sent
            return total
        sent = 0
        while sent < total:
            count = self._gso_run(datagrams, sent) if self._gso else 1
            if count > 1:
                size = len(datagrams[sent])
                gso = [*cmsgs, (SOL_UDP, UDP_SEGMENT, _U16.pack(size))]
                try:
                    if not self._sendmsg(datagrams[sent:sent + count], target, gso,
                                         raise_io=True):
                        return sent
                except OSError as exc:
                    # EIO: the device has no checksum offload; fall back for good.
                    logger.debug("GSO send failed (%s); sending one datagram per call", exc)
                    self.disable_gso()
                    continue
            elif not self._sendmsg([datagrams[sent]], target, cmsgs):
                return sent
            sent += count
        return sent

    @staticmethod
    def _gso_run(datagrams: Sequence[bytes], start: int) -> int:
        """How many datagrams from ``start`` form one GSO train: equal sizes, last may be smaller."""
        size = len(datagrams[start])
        limit = min(len(datagrams), start + GSO_MAX_SEGMENTS, start + GSO_MAX_BYTES // max(size, 1))
        end = start + 1
        while end < limit:
            length = len(datagrams[end])
            if length > size:
                break
            end += 1
            if length < size:
                break
        return end - start

    def _sendmsg(self, buffers: Sequence[bytes], target: tuple[str, int],
                 cmsgs: list[tuple[int, int, bytes]], raise_io: bool = False) -> bool:
        """One sendmsg to ``target`` (already in the socket's address form, ``_plan``)."""
        try:
            self.sock.sendmsg(buffers, cmsgs, 0, target)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            if raise_io and exc.errno == errno.EIO:
                raise
            if cmsgs and exc.errno == errno.EINVAL and self.features.ecn_send:
                # The platform refuses our ECN cmsg: stop marking (RFC 9000 §13.4.2 allows it).
                logger.debug("ECN marking refused (%s); sending unmarked", exc)
                self.features = _replace_features(self.features, ecn_send=False)
                self._plans.clear()  # their cmsgs carry the ECN marking
                stripped = [c for c in cmsgs if c[1] not in (IP_TOS, IPV6_TCLASS)
                            or c[0] == SOL_UDP]
                return self._sendmsg(buffers, target, stripped, raise_io)
            logger.debug("send to %s failed: %s", target, exc)
        return True

    # -- receiving --------------------------------------------------------------------

    def recv(self, max_datagrams: int = 64) -> list[ReceivedDatagram]:
        """Read what is queued (up to ``max_datagrams`` syscalls); [] when nothing is."""
        out: list[ReceivedDatagram] = []
        sock = self.sock
        for _ in range(max_datagrams):
            try:
                data, ancdata, _flags, addr = sock.recvmsg(RECV_BUFFER_SIZE, self._ancbufsize)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # ICMP errors surface here (ECONNREFUSED on Linux); nothing to read.
                logger.debug("recvmsg: %s", exc)
                continue
            ecn = 0
            segment = 0
            local = None
            for level, kind, value in ancdata:
                if level == SOL_UDP and kind == UDP_GRO and len(value) >= _U16.size:
                    segment = (_INT.unpack(value)[0] if len(value) >= _INT.size
                               else _U16.unpack(value[:2])[0])
                elif level == socket.IPPROTO_IP and kind == IP_TOS and value:
                    ecn = value[0] & 3
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_TCLASS and len(value) >= 4:
                    ecn = _INT.unpack(value[:4])[0] & 3
                elif level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    local = socket.inet_ntop(socket.AF_INET, value[8:12])  # ipi_addr
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= 16:
                    local = normalize_address((socket.inet_ntop(socket.AF_INET6, value[:16]),
                                               0))[0]
            peer = self._peers.get(addr)
            if peer is None:
                if len(self._peers) >= _PEER_CACHE_SIZE:
                    self._peers.clear()  # bounded: a flood of source addresses only empties it
                peer = self._peers[addr] = normalize_address(addr)
            if segment and len(data) > segment:
                self.gro_reads += 1
                out.extend([_received(data[i:i + segment], peer, ecn, local)
                            for i in range(0, len(data), segment)])
            else:
                out.append(_received(data, peer, ecn, local))
        return out


def _pktinfo_cmsg(source: str, peer: Address) -> tuple[int, int, bytes]:
    """The cmsg that makes the kernel send from ``source`` (RFC 9000 §9: the server
    answers from the address the client sent to)."""
    if _is_ipv6_host(peer[0]):
        # struct in6_pktinfo {in6_addr ipi6_addr; int ipi6_ifindex}: ifindex 0, any link.
        return (socket.IPPROTO_IPV6, IPV6_PKTINFO,
                socket.inet_pton(socket.AF_INET6, _mapped(source)) + _INT.pack(0))
    # struct in_pktinfo {int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr}: the
    # source is ipi_spec_dst (ip(7)); also taken on a dual-stack socket for an IPv4 peer.
    return (socket.IPPROTO_IP, IP_PKTINFO,
            _INT.pack(0) + socket.inet_pton(socket.AF_INET, source) + bytes(4))


def _replace_features(features: UdpFeatures, **changes: bool) -> UdpFeatures:
    values = {
        "gso": features.gso, "gro": features.gro, "ecn_receive": features.ecn_receive,
        "ecn_send": features.ecn_send, "dual_stack": features.dual_stack,
    }
    values.update(changes)
    return UdpFeatures(bound_device=features.bound_device, **values)

"""Traffic classes: which FEC action an IP packet gets, from its own headers.

The tunnel carries raw IP packets (RFC 9484), so the class is read from the
packet: IPv4 (RFC 791) or IPv6 (RFC 8200) header, the DSCP in the TOS /
Traffic Class byte (RFC 2474 §3), the protocol (IPv6: after walking the
extension headers of RFC 8200 §4), and for UDP (RFC 768) and TCP (RFC 9293)
the ports of the first fragment.  Rules are tried in order, the first match
wins; a packet that does not parse gets the default action, never an error.
Per packet the work is a few slices and integer compares.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

PROTO_TCP, PROTO_UDP = 6, 17
_V6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options (RFC 8200 §4.1)
_V6_FRAGMENT = 44
_MAX_V6_EXTENSIONS = 8


class Action(enum.Enum):
    """What a traffic class gets.

    ``off``: sent as is; ``fec``: sources + repairs; ``redundant``: every packet
    twice, the copy on another path; ``fec+aggregate``: FEC and the bond may
    spread the class's packets over every path (the link policy reads
    :attr:`aggregate`).
    """

    OFF = "off"
    FEC = "fec"
    REDUNDANT = "redundant"
    FEC_AGGREGATE = "fec+aggregate"

    @property
    def aggregate(self) -> bool:
        return self is Action.FEC_AGGREGATE


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """What the classifier read from one packet (None where it could not)."""

    version: int
    dscp: int
    protocol: int | None
    destination: int  # the address as an integer
    src_port: int | None
    dst_port: int | None
    l4_offset: int | None = None  # where the TCP/UDP header starts (with the ports)


def parse_packet(packet: bytes) -> PacketInfo | None:
    """The header fields classes match on, or None for a packet that is not IP."""
    if len(packet) < 1:
        return None
    version = packet[0] >> 4
    if version == 4:
        if len(packet) < 20:
            return None
        ihl = (packet[0] & 0x0F) * 4
        if ihl < 20:
            return None
        dscp = packet[1] >> 2
        proto = packet[9]
        dst = int.from_bytes(packet[16:20], "big")
        first_fragment = (int.from_bytes(packet[6:8], "big") & 0x1FFF) == 0
        return _ports(4, dscp, proto, dst, packet, ihl, first_fragment)
    if version == 6:
        if len(packet) < 40:
            return None
        dscp = ((packet[0] & 0x0F) << 2) | (packet[1] >> 6)
        dst = int.from_bytes(packet[24:40], "big")
        nxt, off = packet[6], 40
        first_fragment = True
        for _ in range(_MAX_V6_EXTENSIONS):
            if nxt in _V6_EXTENSIONS:
                if len(packet) < off + 2:
                    return PacketInfo(6, dscp, None, dst, None, None)
                nxt, off = packet[off], off + (packet[off + 1] + 1) * 8
            elif nxt == _V6_FRAGMENT:
                if len(packet) < off + 8:
                    return PacketInfo(6, dscp, None, dst, None, None)
                first_fragment = (int.from_bytes(packet[off + 2:off + 4], "big") >> 3) == 0
                nxt, off = packet[off], off + 8
            else:
                break
        return _ports(6, dscp, nxt, dst, packet, off, first_fragment)
    return None


def _ports(version: int, dscp: int, proto: int, dst: int, packet: bytes, off: int,
           first_fragment: bool) -> PacketInfo:
    if proto in (PROTO_TCP, PROTO_UDP) and first_fragment and len(packet) >= off + 4:
        return PacketInfo(version, dscp, proto, dst,
                          int.from_bytes(packet[off:off + 2], "big"),
                          int.from_bytes(packet[off + 2:off + 4], "big"), off)
    return PacketInfo(version, dscp, proto, dst, None, None)


_UDP_HEADER = 8
_RTP_HEADER = 12
_RTP_FIRST = (0x80, 0x90)
"""An RTP header's first byte as real-time media sends it: version 2, no padding, no
CSRC (no mixer), with or without a header extension (WebRTC's)."""
_RTP_DYNAMIC = range(96, 128)
"""Dynamic payload types (RFC 3551 §3), what SDP-negotiated video uses; RTCP sharing the
port reads as marker + 72-76 (RFC 5761 §4), outside this range."""


def rtp_marker(packet: bytes) -> bool:
    """Whether ``packet`` is RTP over UDP (RFC 3550 §5.1) with the marker bit set.

    Video payload formats set the marker on the last packet of a frame (RFC 6184 §5.1,
    RFC 7741 §4.1): the burst is over, the FEC block can close.  (Audio sets it on a
    talkspurt's first packet, RFC 3551 §4.1: a block that closes there loses nothing.)
    The test is narrow -- first byte 0x80 or 0x90, a dynamic payload type -- so that
    another protocol's bytes rarely pass for RTP (RFC 7983 §7: STUN, DTLS, TURN channels
    and QUIC never start with 0x80 or 0x90); one that does only ends a block early.
    False for anything else, never an error."""
    info = parse_packet(packet)
    if info is None or info.protocol != PROTO_UDP or info.l4_offset is None:
        return False
    rtp = info.l4_offset + _UDP_HEADER
    if len(packet) < rtp + _RTP_HEADER or packet[rtp] not in _RTP_FIRST:
        return False
    second = packet[rtp + 1]
    return bool(second & 0x80) and (second & 0x7F) in _RTP_DYNAMIC


@dataclass(frozen=True, slots=True)
class ClassRule:
    """One traffic class: a packet matches when every given criterion does.

    ``dscp``: DSCP values (any); ``protocol``: IP protocol number; ``ports``:
    inclusive ranges matched against the source OR destination port (a call's
    packets go both ways); ``destinations``: IP networks the destination is in.
    An empty criterion matches everything.  ``max_overhead``: this class's own
    ceiling for adaptive repair (None: the ``[fec]`` one) — a call is so small
    that doubling it is cheap, and only a short block keeps its delay low.
    """

    name: str
    action: Action
    dscp: frozenset[int] = frozenset()
    protocol: int | None = None
    ports: tuple[tuple[int, int], ...] = ()
    destinations: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_overhead: float | None = None

    def matches(self, info: PacketInfo) -> bool:
        if self.dscp and info.dscp not in self.dscp:
            return False
        if self.protocol is not None and info.protocol != self.protocol:
            return False
        if self.ports:
            s, d = info.src_port, info.dst_port
            if s is None or d is None:
                return False
            if not any(lo <= s <= hi or lo <= d <= hi for lo, hi in self.ports):
                return False
        if self.destinations:
            return any(
                net.version == info.version
                and (info.destination & int(net.netmask)) == int(net.network_address)
                for net in self.destinations
            )
        return True


CACHE_SIZE = 4096
"""Flows whose class is remembered (the cache is emptied when full)."""


def _flow_key(packet: bytes) -> bytes | None:
    """The bytes a class depends on, for an IPv4 TCP/UDP packet that is not a later
    fragment (the common case): TOS, protocol, destination and ports.  None otherwise."""
    if len(packet) < 24 or packet[0] >> 4 != 4 or packet[9] not in (PROTO_TCP, PROTO_UDP):
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or len(packet) < ihl + 4 or packet[6] & 0x1F or packet[7]:
        return None
    return packet[1:2] + packet[9:10] + packet[16:20] + packet[ihl:ihl + 4]


class Classifier:
    """The rules in order, then ``default``; ``classify`` never raises.

    The class of an IPv4 TCP/UDP flow is remembered by its header bytes (TOS,
    protocol, destination, ports): a flow's packets after the first cost one
    dictionary lookup instead of a parse and a walk over the rules.
    """

    __slots__ = ("_cache", "default", "rules")

    def __init__(self, rules: tuple[ClassRule, ...], default: Action = Action.OFF) -> None:
        self.rules = rules
        self.default = default
        self._cache: dict[bytes, tuple[str, Action]] = {}

    def classify(self, packet: bytes) -> tuple[str, Action]:
        """(class name, action) for one IP packet; ("default", default) if none matches."""
        key = _flow_key(packet)
        if key is not None:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        result = self._classify(packet)
        if key is not None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = result
        return result

    def _classify(self, packet: bytes) -> tuple[str, Action]:
        info = parse_packet(packet)
        if info is not None:
            for rule in self.rules:
                if rule.matches(info):
                    return rule.name, rule.action
        return "default", self.default

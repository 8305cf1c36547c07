"""ACK writer of the packet builder: ACK, ACK_ECN, PATH_ACK and PATH_ACK_ECN
frames written straight to bytes from a packet-number space's ACK tracker.

RFC 9000 §19.3 (ACK frame layout: largest, delay, ranges as gap/length pairs),
§19.3.2 (ECN counts), §13.2.1 (which packets are acknowledged and when),
§18.2 (ack_delay_exponent; 3 for Initial/Handshake); draft-ietf-quic-multipath
§"PATH_ACK Frame" (the path ID after the type) and §"Computing Path RTT" (a path's
acknowledgments travel on that path while it can send).  Written directly instead
of through the frame codec because one is built for nearly every packet.
"""

from __future__ import annotations

from collections.abc import Iterable

from tquic.paths.ack_tracker import encode_ack_delay
from tquic.paths.path import PacketSpace, Path
from tquic.wire.buffer import encode_varint
from tquic.wire.epochs import SpaceId


class AckWriter:
    """ACK and PATH_ACK frames of a packet-number space, as bytes.  Owns only the
    local ack_delay_exponent; the ranges and the delay come from the space's tracker."""

    __slots__ = ("_exponent",)

    def __init__(self, ack_delay_exponent: int) -> None:
        self._exponent = ack_delay_exponent

    def frame(self, space: PacketSpace, now: float,
              path_id: int | None = None) -> tuple[bytes, int] | None:
        """The ACK (``path_id`` None) or PATH_ACK frame of ``space`` and the largest
        packet number it acknowledges, or None when nothing is owed."""
        tracker = space.ack_tracker
        if not tracker.has_unacked:
            return None
        ranges, delay = tracker.build_ack_ranges(now)
        if not ranges:
            return None
        exponent = self._exponent if space.kind == SpaceId.APPLICATION else 3
        ecn = tracker.ecn_counts
        # ACK frame written directly (RFC 9000 §19.3): the per-packet path; PATH_ACK
        # (0x3e) is the same with the path ID after the type (multipath §"PATH_ACK Frame");
        # the _ECN types (0x03, 0x3f) append the ECT0, ECT1 and CE counts.
        largest = ranges[0][1]
        if path_id is None:
            head = b"\x02" if ecn is None else b"\x03"
        else:
            head = (b"\x3e" if ecn is None else b"\x3f") + encode_varint(path_id)
        parts = [head, encode_varint(largest),
                 encode_varint(encode_ack_delay(delay, exponent)),
                 encode_varint(len(ranges) - 1), encode_varint(largest - ranges[0][0])]
        previous_smallest = ranges[0][0]
        for smallest, biggest in ranges[1:]:
            parts.append(encode_varint(previous_smallest - biggest - 2))  # Gap
            parts.append(encode_varint(biggest - smallest))  # ACK Range Length
            previous_smallest = smallest
        if ecn is not None:
            parts.extend([encode_varint(ecn[0]), encode_varint(ecn[1]), encode_varint(ecn[2])])
        return b"".join(parts), largest

    def collect_path_acks(self, paths: Iterable[Path], path: Path,
                          out: list[tuple[bytes, PacketSpace, int]], now: float,
                          room: int) -> int:
        """multipath: the PATH_ACK of this path's space, plus those of paths that cannot
        send any more (abandoned ones still in retention, §"Handling PATH_ACK for
        Abandoned Paths").  A path's ACKs travel on the path itself while it can send
        (§"Computing Path RTT": stable ACK paths; and a dead path then cannot take the
        ACKs of a live one with it, which would make the live one look dead too)."""
        used = 0
        for p in paths:
            if p is not path and can_carry(p):
                continue
            tracker = p.space.ack_tracker
            if not tracker.has_unacked or tracker.ack_deadline() is None:
                continue
            built = self.frame(p.space, now, path_id=p.path_id)
            if built is None or len(built[0]) > room - used:
                continue
            out.append((built[0], p.space, built[1]))
            used += len(built[0])
        return used


def can_carry(path: Path) -> bool:
    """The path can still send packets (so it carries its own PATH_ACKs)."""
    return path.usable and path.peer_cid is not None

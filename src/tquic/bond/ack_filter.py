"""ACK filtering: of the pure TCP ACKs of one flow read in one batch, only the newest goes.

Inner TCP's receiver acknowledges every second segment (RFC 9293 §3.8.6.3), so a
download through the tunnel sends back one small ACK per two data packets, and
each costs the daemons about as much as a data packet (a TUN read, a DATAGRAM
frame, the peer's frame parsing, a TUN write).  When several pure ACKs of the same
flow are waiting in the TUN's queue together, all but the newest say nothing the
newest does not (it acknowledges more, and carries the latest window and
timestamp): RFC 3449 §5.2.1 ("ACK Filtering") drops them at the queue.  What that
section warns about is kept out:

- only *pure* ACKs are candidates: flags exactly ACK (no SYN, FIN, RST, URG, PSH,
  ECE or CWR: an ECN echo is never dropped), no payload, and no TCP option other
  than the timestamp (NOP, NOP, TS: a SACK block is never dropped);
- an ACK is dropped only for a later one of the same flow whose acknowledgment
  number is strictly ahead: duplicate ACKs (the same number), which drive fast
  retransmit (RFC 5681 §3.2), all go through;
- nothing is held back: filtering works on what one read returned, so no ACK
  waits for a successor (no added delay), and a lone ACK is never touched.

The sender then sees fewer, "stretch" ACKs; Linux and every modern stack count
the bytes (or segments) an ACK covers (RFC 3465 appropriate byte counting), so
its window grows as before.
"""

from __future__ import annotations

_TCP = 6
_ACK_ONLY = 0x10
_TIMESTAMP_OPTION = b"\x01\x01\x08\x0a"  # NOP, NOP, kind 8 length 10 (RFC 7323 §3)
# Longest pure ACK: a 60-byte IPv4 header with a 32-byte TCP header; data packets are
# skipped on their length alone.
_MAX_PURE_ACK = 92


def pure_ack(packet: bytes) -> tuple[bytes, int] | None:
    """(flow key, acknowledgment number) of a pure TCP ACK (module docstring), else None."""
    size = len(packet)
    if size > _MAX_PURE_ACK or size < 40:
        return None
    version = packet[0] >> 4
    if version == 4:
        tcp = (packet[0] & 0x0F) * 4
        # Protocol TCP, not a fragment (MF clear, offset 0), the whole packet here.
        if (packet[9] != _TCP or packet[6] & 0x3F or packet[7] or tcp < 20
                or int.from_bytes(packet[2:4], "big") != size):
            return None
        addresses = packet[12:20]
    elif version == 6:
        tcp = 40
        # No extension header (next header TCP), the whole packet here.
        if packet[6] != _TCP or int.from_bytes(packet[4:6], "big") != size - 40:
            return None
        addresses = packet[8:40]
    else:
        return None
    if size < tcp + 20 or packet[tcp + 13] != _ACK_ONLY:
        return None
    header = (packet[tcp + 12] >> 4) * 4
    if tcp + header != size:  # a payload, or a header longer than the packet
        return None
    if header != 20 and (header != 32 or packet[tcp + 20:tcp + 24] != _TIMESTAMP_OPTION):
        return None
    return addresses + packet[tcp:tcp + 4], int.from_bytes(packet[tcp + 8:tcp + 12], "big")


def filter_acks(packets: list[bytes]) -> tuple[list[bytes], int]:
    """``packets`` (one read's, in order) without the pure ACKs a later pure ACK of the
    same flow supersedes; and how many were dropped."""
    if len(packets) < 2:
        return packets, 0
    newest: dict[bytes, tuple[int, int]] = {}  # flow -> (index, ack) of its last pure ACK
    dropped: list[int] = []
    for index, packet in enumerate(packets):
        if len(packet) > _MAX_PURE_ACK:
            continue
        found = pure_ack(packet)
        if found is None:
            continue
        key, ack = found
        previous = newest.get(key)
        if previous is not None and 0 < (ack - previous[1]) & 0xFFFFFFFF < 0x80000000:
            dropped.append(previous[0])
        newest[key] = (index, ack)
    if not dropped:
        return packets, 0
    gone = set(dropped)
    return [p for i, p in enumerate(packets) if i not in gone], len(dropped)

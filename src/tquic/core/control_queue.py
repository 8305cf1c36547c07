"""The control-frame queue: frames that are not stream data, waiting for a 1-RTT packet.

MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS, RESET_STREAM, STOP_SENDING, the CID frames,
NEW_TOKEN, the multipath frames, HANDSHAKE_DONE, ...: each is queued as a typed
retransmission record (core/records.py), and its frame is made only when a packet
has room, with the values current then (RFC 9000 §13.3: "sent again with the most
recent value").  The same records come back here when a packet carrying them is
lost (``Streams.on_records_lost``).

Components push records; the packet builder writes them.  The hot path reads two
plain attributes (``records`` non-empty, ``handshake_done``), never a method, so
that asking "anything queued?" per packet costs no call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tquic.core.packet_draft import encode_one
from tquic.core.records import HANDSHAKE_DONE, Record
from tquic.wire.frames import Frame

if TYPE_CHECKING:
    from tquic.core.packet_draft import PacketDraft

HANDSHAKE_DONE_FRAME = b"\x1e"  # RFC 9000 §19.20: a type byte, no fields


class ControlQueue:
    """Pending control records, in the order they were queued, and whether a
    HANDSHAKE_DONE is owed (server, RFC 9001 §4.1.2)."""

    __slots__ = ("handshake_done", "records")

    def __init__(self) -> None:
        self.records: list[Record] = []  # read by the send loop; changed only here
        self.handshake_done = False

    @property
    def pending(self) -> bool:
        """Anything to send (off the hot path; it reads the two attributes)."""
        return bool(self.records) or self.handshake_done

    def push(self, record: Record) -> None:
        """Queue one record (its frame is made when it is written)."""
        self.records.append(record)

    def queue_handshake_done(self) -> None:
        """The server owes HANDSHAKE_DONE (again, when the packet carrying it is lost)."""
        self.handshake_done = True

    def write(self, draft: PacketDraft, room: int,
              frame_of: Callable[[Record], Frame | None]) -> int:
        """Fill ``draft`` with up to ``room`` bytes of control frames: HANDSHAKE_DONE
        first, then the records in order until one does not fit (it and those after
        it wait for the next packet).  ``frame_of`` makes a record's frame with current
        values, None when it is no longer needed (the record is dropped).  Returns the
        bytes used."""
        used = 0
        if self.handshake_done:
            self.handshake_done = False
            draft.add(HANDSHAKE_DONE_FRAME, HANDSHAKE_DONE)
            used += 1
        records = self.records
        if not records:
            return used
        keep: list[Record] = []
        for i, record in enumerate(records):
            frame = frame_of(record)
            if frame is None:
                continue
            data = encode_one(frame)
            if len(data) > room - used:
                keep.extend(records[i:])
                break
            draft.add(data, record)
            used += len(data)
        self.records = keep
        return used

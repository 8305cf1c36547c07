"""A packet being filled: its frames as byte strings (joined once when sealed), its
retransmission records (core/records.py) and its size so far."""

from __future__ import annotations

from tquic.core.records import Record
from tquic.paths.path import PacketSpace, Path
from tquic.wire.frames import ConnectionCloseFrame, Frame, encode_frames

TAG = 16  # AEAD tag (RFC 9001 §5.3)
PING = b"\x01"


class PacketDraft:
    """A packet being filled (frames as byte strings, retransmission records)."""

    __slots__ = ("ack_eliciting", "close", "dcid", "epoch", "header_len", "padding", "parts",
                 "path", "payload_len", "pn", "pn_len", "records", "space")

    def __init__(self, epoch: int, space: PacketSpace, path: Path, dcid: bytes, pn: int,
                 pn_len: int, header_len: int) -> None:
        self.epoch = epoch
        self.space = space
        self.path = path
        self.dcid = dcid
        self.pn = pn
        self.pn_len = pn_len
        self.header_len = header_len
        self.parts: list[bytes] = []
        self.payload_len = 0
        self.records: list[Record] = []
        self.ack_eliciting = False
        self.padding = 0
        # The CONNECTION_CLOSE it carries, for qlog: a close has no retransmission
        # record (it is never resent as such, RFC 9000 §10.2.1).
        self.close: ConnectionCloseFrame | None = None

    @property
    def size(self) -> int:
        return self.header_len + self.payload_len + self.padding + TAG

    def add(self, data: bytes, record: Record | None, ack_eliciting: bool = True) -> None:
        self.parts.append(data)
        self.payload_len += len(data)
        if record is not None:
            self.records.append(record)
        if ack_eliciting:
            self.ack_eliciting = True


def encode_one(frame: Frame) -> bytes:
    return encode_frames((frame,))

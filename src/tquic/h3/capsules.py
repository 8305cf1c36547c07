"""The Capsule Protocol (RFC 9297 §3): codec and a streaming parser.

Capsules travel in the DATA of an (extended) CONNECT stream.  The parser is fed
the stream's data in arbitrary pieces and returns whole capsules.  Capsule
types the caller does not handle are skipped without being buffered (§3.2:
"silently drop that Capsule"), and buffered capsules are bounded, so a peer
cannot make us hold more than ``max_capsule_size`` bytes.  Errors are stream
errors: a malformed capsule makes the message malformed (§3.3 → RFC 9114
§4.1.2, H3_MESSAGE_ERROR); an oversized one is H3_EXCESSIVE_LOAD.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tquic.h3.errors import H3ErrorCode, H3StreamError
from tquic.h3.frames import pull_varint
from tquic.wire.buffer import encode_varint

DEFAULT_MAX_CAPSULE_SIZE = 64 * 1024


class CapsuleType(IntEnum):
    """Capsule types (RFC 9297 §5.4)."""

    DATAGRAM = 0x00


@dataclass(frozen=True, slots=True)
class Capsule:
    """One capsule: Type (i), Length (i), Value (RFC 9297 §3.2)."""

    type: int
    value: bytes


def encode_capsule(capsule_type: int, value: bytes) -> bytes:
    """The wire form of a capsule (RFC 9297 §3.2)."""
    return encode_varint(capsule_type) + encode_varint(len(value)) + value


def encode_datagram_capsule(payload: bytes) -> bytes:
    """A DATAGRAM capsule carrying an HTTP Datagram payload (RFC 9297 §3.5)."""
    return encode_capsule(CapsuleType.DATAGRAM, payload)


class CapsuleParser:
    """Incremental capsule parser for one stream's data (RFC 9297 §3.2-3.3).

    ``handled_types``: capsule types to return; others are skipped unread.
    ``None`` returns every type (each still bounded by ``max_capsule_size``).
    """

    __slots__ = ("_handled", "_head", "_max", "_remaining", "_skipping", "_type", "_value")

    def __init__(
        self,
        handled_types: frozenset[int] | None = None,
        max_capsule_size: int = DEFAULT_MAX_CAPSULE_SIZE,
    ) -> None:
        self._handled = handled_types
        self._max = max_capsule_size
        self._head = b""
        self._value = bytearray()
        self._type = -1  # -1: between capsules
        self._remaining = 0
        self._skipping = False

    @property
    def at_capsule_boundary(self) -> bool:
        return self._type < 0 and not self._head

    def finish(self) -> None:
        """The stream ended cleanly; a truncated last capsule is malformed (§3.3)."""
        if not self.at_capsule_boundary:
            raise H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, "stream ended inside a capsule")

    def feed(self, data: bytes) -> list[Capsule]:
        out: list[Capsule] = []
        if self._head:
            data = self._head + data
            self._head = b""
        pos = 0
        end = len(data)
        while pos < end:
            if self._type < 0:
                ctype, p = pull_varint(data, pos)
                length = -1
                if ctype >= 0:
                    length, p = pull_varint(data, p)
                if length < 0:
                    self._head = data[pos:]
                    break
                pos = p
                self._skipping = self._handled is not None and ctype not in self._handled
                if not self._skipping and length > self._max:
                    raise H3StreamError(
                        H3ErrorCode.H3_EXCESSIVE_LOAD,
                        f"capsule {ctype:#x} of {length} bytes exceeds {self._max}",
                    )
                if length == 0:
                    if not self._skipping:
                        out.append(Capsule(ctype, b""))
                    continue
                self._type = ctype
                self._remaining = length
                continue
            take = min(self._remaining, end - pos)
            if not self._skipping:
                self._value += data[pos : pos + take]
            pos += take
            self._remaining -= take
            if self._remaining == 0:
                if not self._skipping:
                    out.append(Capsule(self._type, bytes(self._value)))
                    self._value.clear()
                self._type = -1
        return out

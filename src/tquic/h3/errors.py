"""HTTP/3 and QPACK error codes and the typed errors of the h3 layer.

RFC 9114 §8.1 defines the HTTP/3 codes, RFC 9204 §6 the QPACK ones and
RFC 9297 §5.2 H3_DATAGRAM_ERROR.  Every parser in ``tquic.h3`` raises
:class:`H3Error` for bad input (never another exception); the connection turns
it into a CONNECTION_CLOSE with the code as the application error code, or —
for :class:`H3StreamError` — into a reset of the one stream.
"""

from __future__ import annotations

from enum import IntEnum


class H3ErrorCode(IntEnum):
    """Application error codes used by HTTP/3 (RFC 9114 §8.1, RFC 9204 §6, RFC 9297 §5.2)."""

    H3_NO_ERROR = 0x100
    H3_GENERAL_PROTOCOL_ERROR = 0x101
    H3_INTERNAL_ERROR = 0x102
    H3_STREAM_CREATION_ERROR = 0x103
    H3_CLOSED_CRITICAL_STREAM = 0x104
    H3_FRAME_UNEXPECTED = 0x105
    H3_FRAME_ERROR = 0x106
    H3_EXCESSIVE_LOAD = 0x107
    H3_ID_ERROR = 0x108
    H3_SETTINGS_ERROR = 0x109
    H3_MISSING_SETTINGS = 0x10A
    H3_REQUEST_REJECTED = 0x10B
    H3_REQUEST_CANCELLED = 0x10C
    H3_REQUEST_INCOMPLETE = 0x10D
    H3_MESSAGE_ERROR = 0x10E
    H3_CONNECT_ERROR = 0x10F
    H3_VERSION_FALLBACK = 0x110
    QPACK_DECOMPRESSION_FAILED = 0x200
    QPACK_ENCODER_STREAM_ERROR = 0x201
    QPACK_DECODER_STREAM_ERROR = 0x202
    H3_DATAGRAM_ERROR = 0x33


def is_reserved_codepoint(value: int) -> bool:
    """True for the GREASE values ``0x1f * N + 0x21`` (RFC 9114 §6.2.3, §7.2.4.1, §7.2.8, §8.1).

    Stream types, frame types, setting identifiers and error codes share the pattern.
    """
    return value >= 0x21 and (value - 0x21) % 0x1F == 0


class H3Error(Exception):
    """A violation that is a connection error of type ``code`` (RFC 9114 §8)."""

    def __init__(self, code: H3ErrorCode, reason: str) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.reason!r})"


class H3StreamError(H3Error):
    """A violation confined to one stream: the stream is reset with ``code`` (RFC 9114 §8).

    The typical case is a malformed message (RFC 9114 §4.1.2: H3_MESSAGE_ERROR).
    """


class H3UsageError(Exception):
    """The local application asked for something HTTP/3 forbids.

    Examples: DATA before HEADERS, a request after GOAWAY was received, an
    extended CONNECT the peer did not enable, invalid header fields.  Nothing is
    sent when this is raised.
    """

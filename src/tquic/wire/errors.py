"""Error codes and the one typed decode error every parser raises.

RFC 9000 §20.1 defines the transport error codes; draft-ietf-quic-multipath
§"Error Codes" adds the path-abandon codes.  A parser never lets any other
exception escape: short input, bad lengths and out-of-range values all become
:class:`QuicDecodeError` carrying the code a CONNECTION_CLOSE should use.
"""

from __future__ import annotations

from enum import IntEnum


class TransportErrorCode(IntEnum):
    """QUIC transport error codes (RFC 9000 §20.1)."""

    NO_ERROR = 0x0
    INTERNAL_ERROR = 0x1
    CONNECTION_REFUSED = 0x2
    FLOW_CONTROL_ERROR = 0x3
    STREAM_LIMIT_ERROR = 0x4
    STREAM_STATE_ERROR = 0x5
    FINAL_SIZE_ERROR = 0x6
    FRAME_ENCODING_ERROR = 0x7
    TRANSPORT_PARAMETER_ERROR = 0x8
    CONNECTION_ID_LIMIT_ERROR = 0x9
    PROTOCOL_VIOLATION = 0xA
    INVALID_TOKEN = 0xB
    APPLICATION_ERROR = 0xC
    CRYPTO_BUFFER_EXCEEDED = 0xD
    KEY_UPDATE_ERROR = 0xE
    AEAD_LIMIT_REACHED = 0xF
    NO_VIABLE_PATH = 0x10
    VERSION_NEGOTIATION_ERROR = 0x11  # RFC 9368 §10.2
    CRYPTO_ERROR = 0x100  # 0x100-0x1ff: CRYPTO_ERROR + TLS alert (RFC 9001 §4.8)


class PathAbandonCode(IntEnum):
    """Error codes carried in PATH_ABANDON (draft-ietf-quic-multipath §"Error Codes")."""

    NO_ERROR = 0x0
    APPLICATION_ABANDON_PATH = 0x3E
    PATH_RESOURCE_LIMIT_REACHED = 0x3E75
    PATH_UNSTABLE_OR_POOR = 0x3E76
    NO_CID_AVAILABLE_FOR_PATH = 0x3E77


def crypto_error(alert: int) -> int:
    """The transport error code for a TLS alert (RFC 9001 §4.8)."""
    return int(TransportErrorCode.CRYPTO_ERROR) + (alert & 0xFF)


class QuicError(Exception):
    """A protocol error that closes the connection with ``error_code``.

    Raised anywhere below the connection (parsers, streams, flow control, loss
    recovery, TLS); the connection turns it into CONNECTION_CLOSE.
    ``frame_type`` is set when a frame caused it, so that the CONNECTION_CLOSE
    can carry it (RFC 9000 §19.19).
    """

    def __init__(
        self,
        error_code: int,
        reason: str,
        frame_type: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.error_code = error_code
        self.reason = reason
        self.frame_type = frame_type

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error_code={self.error_code:#x}, "
            f"reason={self.reason!r}, frame_type={self.frame_type!r})"
        )


class QuicDecodeError(QuicError, ValueError):
    """Bytes that do not decode.  ``error_code`` is the code the RFC names."""


class BufferReadError(QuicDecodeError):
    """Input ended before the value being read (RFC 9000 §12.4: FRAME_ENCODING_ERROR)."""

    def __init__(self, reason: str = "read past end of buffer") -> None:
        super().__init__(TransportErrorCode.FRAME_ENCODING_ERROR, reason)

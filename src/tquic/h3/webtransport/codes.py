"""WebTransport over HTTP/3 values: drafts, error codes, capsules (draft-ietf-webtrans-http3).

Two wire versions are spoken:

- ``LATEST`` — the draft in ``shared/specs`` (SETTINGS_WT_ENABLED, upgrade token
  ``webtransport-h3``, flow-control SETTINGS and capsules, §5);
- ``DRAFT02`` — draft-ietf-webtrans-http3-02, still what Chromium (156) and
  aioquic negotiate: SETTINGS_ENABLE_WEBTRANSPORT=1, ``:protocol webtransport``
  and the ``sec-webtransport-http3-draft02: 1`` request header, answered with
  ``sec-webtransport-http3-draft: draft02``.  Same stream headers, datagrams,
  close capsule and error mapping; no flow control.

Every decoder raises :class:`CapsuleError` (a typed error naming the problem).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tquic.h3.frames import pull_varint
from tquic.wire.buffer import encode_varint


class WtVersion(Enum):
    """The WebTransport draft a session speaks; value = the ``:protocol`` token."""

    LATEST = "webtransport-h3"
    DRAFT02 = "webtransport"


DRAFT02_REQUEST_HEADER = b"sec-webtransport-http3-draft02"
DRAFT02_RESPONSE_HEADER = b"sec-webtransport-http3-draft"

# HTTP/3 error codes (§9.4).
WT_BUFFERED_STREAM_REJECTED = 0x3994BD84
WT_SESSION_GONE = 0x170D7B68
WT_FLOW_CONTROL_ERROR = 0x045D4487
WT_ALPN_ERROR = 0x0817B3DD
WT_REQUIREMENTS_NOT_MET = 0x212C0D48

# §4.4: application error codes 0..2^32-1 live in this HTTP/3 range, skipping the
# reserved 0x1f * N + 0x21 codepoints.
WT_APPLICATION_ERROR_FIRST = 0x52E4A40FA8DB
WT_APPLICATION_ERROR_LAST = 0x52E5AC983162
MAX_APPLICATION_ERROR = 0xFFFFFFFF

# Capsule types (§5.6, §6, §4.6).
CLOSE_WEBTRANSPORT_SESSION = 0x2843
DRAIN_WEBTRANSPORT_SESSION = 0x78AE
WT_MAX_STREAMS_BIDI = 0x190B4D3F
WT_MAX_STREAMS_UNI = 0x190B4D40
WT_STREAMS_BLOCKED_BIDI = 0x190B4D43
WT_STREAMS_BLOCKED_UNI = 0x190B4D44
WT_MAX_DATA = 0x190B4D3D
WT_DATA_BLOCKED = 0x190B4D41
# Prohibited over HTTP/3 (§5.3: they belong to the HTTP/2 mapping); a session error.
WT_MAX_STREAM_DATA = 0x190B4D3E
WT_STREAM_DATA_BLOCKED = 0x190B4D42

FLOW_CAPSULES = frozenset({WT_MAX_STREAMS_BIDI, WT_MAX_STREAMS_UNI, WT_STREAMS_BLOCKED_BIDI,
                           WT_STREAMS_BLOCKED_UNI, WT_MAX_DATA, WT_DATA_BLOCKED})
SESSION_CAPSULES = FLOW_CAPSULES | {CLOSE_WEBTRANSPORT_SESSION, DRAIN_WEBTRANSPORT_SESSION,
                                    WT_MAX_STREAM_DATA, WT_STREAM_DATA_BLOCKED}

MAX_CLOSE_REASON = 1024  # bytes of UTF-8 (§6)
MAX_STREAMS_VALUE = 1 << 60  # §5.6.2


class CapsuleError(ValueError):
    """A malformed WebTransport capsule; ``code`` is what the session/stream is reset with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def app_code_to_http(code: int) -> int:
    """A WebTransport application error code (32 bits) as an HTTP/3 error code (§4.4)."""
    if not 0 <= code <= MAX_APPLICATION_ERROR:
        raise ValueError(f"WebTransport error codes are 32-bit unsigned, got {code}")
    return WT_APPLICATION_ERROR_FIRST + code + code // 0x1E


def http_code_to_app(code: int) -> int | None:
    """The application error code an HTTP/3 code carries, or None when it is outside
    the WT_APPLICATION_ERROR range or a reserved codepoint (§4.4: the stream is still
    reset, with no application error code)."""
    if not WT_APPLICATION_ERROR_FIRST <= code <= WT_APPLICATION_ERROR_LAST:
        return None
    if (code - 0x21) % 0x1F == 0:
        return None
    shifted = code - WT_APPLICATION_ERROR_FIRST
    return shifted - shifted // 0x1F


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How a session ended (W3C WebTransportCloseInfo): ``abrupt`` when its CONNECT
    stream was reset or the connection went away instead of a clean close."""

    code: int = 0
    reason: str = ""
    abrupt: bool = False


def encode_close(code: int, reason: str) -> bytes:
    """CLOSE_WEBTRANSPORT_SESSION value: code (32), UTF-8 reason truncated at a
    character boundary to 1024 bytes (§6)."""
    if not 0 <= code <= MAX_APPLICATION_ERROR:
        raise ValueError(f"close code must be a 32-bit unsigned integer, got {code}")
    raw = reason.encode("utf-8")
    if len(raw) > MAX_CLOSE_REASON:
        raw = raw[:MAX_CLOSE_REASON].decode("utf-8", "ignore").encode("utf-8")
    return code.to_bytes(4, "big") + raw


def decode_close(value: bytes) -> CloseInfo:
    """Parse a CLOSE_WEBTRANSPORT_SESSION value; a bad one resets the stream with
    H3_MESSAGE_ERROR (§6)."""
    if len(value) < 4:
        raise CapsuleError(0x10E, "CLOSE_WEBTRANSPORT_SESSION shorter than its 32-bit code")
    if len(value) - 4 > MAX_CLOSE_REASON:
        raise CapsuleError(0x10E, "CLOSE_WEBTRANSPORT_SESSION reason above 1024 bytes")
    try:
        reason = value[4:].decode("utf-8")
    except UnicodeDecodeError:
        raise CapsuleError(0x10E, "CLOSE_WEBTRANSPORT_SESSION reason is not UTF-8") from None
    return CloseInfo(int.from_bytes(value[:4], "big"), reason)


def encode_varint_capsule_value(value: int) -> bytes:
    return encode_varint(value)


def decode_varint_value(capsule_type: int, value: bytes) -> int:
    """The single varint of a flow-control capsule (§5.6); values above 2^60 for the
    stream-count capsules are WT_FLOW_CONTROL_ERROR."""
    number, end = pull_varint(value, 0)
    if number < 0 or end != len(value):
        raise CapsuleError(0x10E, f"capsule {capsule_type:#x}: value is not exactly one varint")
    stream_counts = {WT_MAX_STREAMS_BIDI, WT_MAX_STREAMS_UNI, WT_STREAMS_BLOCKED_BIDI,
                     WT_STREAMS_BLOCKED_UNI}
    if capsule_type in stream_counts and number > MAX_STREAMS_VALUE:
        raise CapsuleError(WT_FLOW_CONTROL_ERROR, f"capsule {capsule_type:#x}: {number} > 2^60")
    return number

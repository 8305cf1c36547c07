"""Field-section validation for HTTP/3 messages (RFC 9114 §4.1.2, §4.2, §4.3, §4.4; RFC 9220).

One linear pass over the field lines (never over their bytes in Python) checks
what makes a message malformed: pseudo-header fields that are unknown, repeated,
misplaced or missing; uppercase or invalid names; NUL/CR/LF in values;
connection-specific fields; and an unparsable Content-Length.  A violation
raises :class:`~tquic.h3.errors.H3StreamError` with H3_MESSAGE_ERROR — a
stream error (§4.1.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tquic.h3.errors import H3ErrorCode, H3StreamError

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §5.1 token characters, lowercase only (RFC 9114 §4.2: uppercase is malformed).
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
# RFC 9110 §5.5 forbids NUL, CR and LF in field values.
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
_DIGITS = re.compile(rb"[0-9]+")

# RFC 9114 §4.2: connection-specific fields are malformed in HTTP/3 (TE is special-cased).
CONNECTION_SPECIFIC_FIELDS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
_RESPONSE_PSEUDO = frozenset({b":status"})
_NO_PSEUDO: frozenset[bytes] = frozenset()
_AUTHORITY_SCHEMES = frozenset({b"http", b"https"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the connection needs to remember about a validated request head."""

    method: bytes
    protocol: bytes | None  # :protocol of an extended CONNECT (RFC 9220)
    content_length: int | None


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    status: int
    content_length: int | None


def _malformed(reason: str) -> H3StreamError:
    return H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, reason)


def _scan(
    headers: Headers, allowed_pseudo: frozenset[bytes], *, is_request: bool
) -> tuple[dict[bytes, bytes], int | None, bytes | None]:
    """Common checks; returns (pseudo-header fields, content-length, host)."""
    pseudo: dict[bytes, bytes] = {}
    regular_seen = False
    content_length: int | None = None
    host: bytes | None = None
    for name, value in headers:
        if _BAD_VALUE.search(value):
            raise _malformed(f"invalid character in the value of {name!r}")
        if name[:1] == b":":
            # §4.3: pseudo-header fields first, only the defined ones, once each.
            if regular_seen:
                raise _malformed(f"pseudo-header {name!r} after a regular field")
            if name not in allowed_pseudo:
                raise _malformed(f"pseudo-header {name!r} not allowed here")
            if name in pseudo:
                raise _malformed(f"repeated pseudo-header {name!r}")
            pseudo[name] = value
            continue
        regular_seen = True
        if _FIELD_NAME.fullmatch(name) is None:
            raise _malformed(f"invalid or uppercase field name {name!r}")
        if name in CONNECTION_SPECIFIC_FIELDS:
            raise _malformed(f"connection-specific field {name!r}")
        if name == b"te" and (not is_request or value != b"trailers"):
            raise _malformed("TE other than 'trailers'")
        if name == b"content-length":
            if _DIGITS.fullmatch(value) is None:
                raise _malformed(f"invalid content-length {value!r}")
            parsed = int(value)
            if content_length is not None and parsed != content_length:
                raise _malformed("conflicting content-length values")
            content_length = parsed
        elif name == b"host":
            host = value
    return pseudo, content_length, host


def validate_request_headers(headers: Headers, *, allow_protocol: bool) -> RequestInfo:
    """Check a request header section (§4.3.1, §4.4; RFC 9220 §3 for ``:protocol``).

    ``allow_protocol``: whether extended CONNECT is enabled (we sent
    SETTINGS_ENABLE_CONNECT_PROTOCOL=1 when receiving; the peer did when sending).
    """
    pseudo, content_length, host = _scan(headers, _REQUEST_PSEUDO, is_request=True)
    method = pseudo.get(b":method")
    if not method:
        raise _malformed("missing :method")
    protocol = pseudo.get(b":protocol")
    scheme = pseudo.get(b":scheme")
    path = pseudo.get(b":path")
    authority = pseudo.get(b":authority")
    if protocol is not None:
        # RFC 8441 §4 as applied by RFC 9220: extended CONNECT carries all four.
        if not allow_protocol:
            raise _malformed(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL")
        if method != b"CONNECT":
            raise _malformed(":protocol on a method other than CONNECT")
        if not protocol or not scheme or not path or not authority:
            raise _malformed("extended CONNECT needs :scheme, :path and :authority")
        return RequestInfo(method, protocol, content_length)
    if method == b"CONNECT":
        # §4.4: :scheme and :path omitted, :authority carries host:port.
        if scheme is not None or path is not None:
            raise _malformed("CONNECT with :scheme or :path")
        if not authority:
            raise _malformed("CONNECT without :authority")
        return RequestInfo(method, None, content_length)
    if not scheme or path is None:
        raise _malformed("missing :scheme or :path")
    if scheme in _AUTHORITY_SCHEMES:
        if not path:
            raise _malformed("empty :path")
        if not (path[:1] == b"/" or (path == b"*" and method == b"OPTIONS")):
            raise _malformed(f"invalid :path {path!r}")
        # §4.3.1: :authority or Host, non-empty, equal when both are present.
        if authority is None and host is None:
            raise _malformed("missing :authority and host")
        if authority == b"" or host == b"":
            raise _malformed("empty :authority or host")
        if authority is not None and host is not None and authority != host:
            raise _malformed(":authority and host differ")
    return RequestInfo(method, None, content_length)


def validate_response_headers(headers: Headers) -> ResponseInfo:
    """Check a response header section (§4.3.2)."""
    pseudo, content_length, _ = _scan(headers, _RESPONSE_PSEUDO, is_request=False)
    status = pseudo.get(b":status")
    if status is None:
        raise _malformed("missing :status")
    if len(status) != 3 or _DIGITS.fullmatch(status) is None:
        raise _malformed(f"invalid :status {status!r}")
    code = int(status)
    if code < 100 or code == 101:
        # RFC 9110 §15: 100-599 (599 is the largest 3-digit value we accept);
        # RFC 9114 §4.5: HTTP/3 has no 101 (Switching Protocols).
        raise _malformed(f"invalid :status {code}")
    return ResponseInfo(code, content_length)


def validate_trailers(headers: Headers) -> None:
    """Check a trailer section: no pseudo-header fields (§4.3)."""
    _scan(headers, _NO_PSEUDO, is_request=False)


def response_has_no_content(request_method: bytes | None, status: int) -> bool:
    """Responses that never carry content (RFC 9110 §6.4.1): to HEAD, 1xx, 204 and 304."""
    return request_method == b"HEAD" or status < 200 or status in (204, 304)


def field_section_size(headers: Headers) -> int:
    """Size of a field section as §4.2.2 counts it: name + value + 32 per line."""
    return sum(len(n) + len(v) + 32 for n, v in headers)

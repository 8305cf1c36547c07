"""A strict, bounded HTTP/1.1 request parser and response writer (sans-I/O).

The control plane needs little of HTTP: one request per connection, a small
JSON body, no chunked uploads.  So the parser accepts exactly the RFC 9112
grammar it needs and refuses everything else with one typed error carrying
the status to answer (400, 413, 414, 431, 501, 505) — never an exception of
another type, whatever the bytes (fuzzed with hypothesis in
tests/control/test_http.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = ["HttpError", "Limits", "Request", "RequestParser", "reason", "response"]

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# RFC 9110 §5.5: field-value characters (VCHAR, SP, HTAB; obs-text refused).
_FIELD_VALUE = re.compile(rb"^[\x21-\x7e \t]*$")
# RFC 9112 §3.2.1 origin-form: an absolute path and an optional query, visible ASCII.
_TARGET = re.compile(rb"^/[\x21-\x7e]*$")
_VERSION = re.compile(rb"^HTTP/([0-9])\.([0-9])$")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"})

_REASONS = {
    200: "OK", 204: "No Content", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    409: "Conflict", 413: "Content Too Large", 414: "URI Too Long",
    415: "Unsupported Media Type", 422: "Unprocessable Content",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


def reason(status: int) -> str:
    return _REASONS.get(status, "Unknown")


class HttpError(Exception):
    """A request the parser refuses; ``status`` is the response to send before closing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one request (RFC 9112 §3 lets a server refuse longer ones)."""

    max_request_line: int = 2048
    max_header_bytes: int = 8192
    max_headers: int = 48
    max_body: int = 64 * 1024
    max_query_params: int = 16


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    version: str = "HTTP/1.1"
    # The path's segments, each decoded on its own: a name with an encoded '/' (%2F) stays
    # one segment.
    segments: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


_Head = tuple[str, tuple[str, tuple[str, ...], dict[str, str]], dict[str, str], str]


class RequestParser:
    """Feed bytes as they arrive; ``feed`` returns the Request once it is complete."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._length = 0
        self._done = False

    @property
    def started(self) -> bool:
        """Some bytes of a request arrived."""
        return bool(self._buffer) or self._head is not None

    def feed(self, data: bytes) -> Request | None:
        if self._done:
            return None  # one request per connection; anything after it is ignored
        self._buffer += data
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                self._check_partial_head()
                return None
            head = bytes(self._buffer[:end])
            del self._buffer[:end + 4]
            self._head = self._parse_head(head)
            self._length = self._content_length(self._head[2])
        if len(self._buffer) < self._length:
            return None
        method, (path, segments, query), headers, version = self._head
        body = bytes(self._buffer[:self._length])
        self._done = True
        return Request(method=method, path=path, query=query, headers=headers, body=body,
                       version=version, segments=segments)

    # -- the head --------------------------------------------------------------------------

    def _check_partial_head(self) -> None:
        limits = self.limits
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0 and len(self._buffer) > limits.max_request_line:
            raise HttpError(414, f"request line longer than {limits.max_request_line} bytes")
        if len(self._buffer) > limits.max_request_line + limits.max_header_bytes:
            raise HttpError(431, f"header section longer than {limits.max_header_bytes} bytes")

    def _parse_head(self, head: bytes) -> _Head:
        lines = head.split(b"\r\n")
        if len(lines[0]) > self.limits.max_request_line:
            raise HttpError(414, f"request line longer than {self.limits.max_request_line} bytes")
        if sum(len(line) + 2 for line in lines[1:]) > self.limits.max_header_bytes:
            raise HttpError(431, f"header section longer than {self.limits.max_header_bytes} bytes")
        if any(b"\r" in line or b"\n" in line for line in lines):
            raise HttpError(400, "bare CR or LF in the request head (RFC 9112 §2.2)")
        method, target, version = self._request_line(lines[0])
        headers = self._headers(lines[1:])
        if version == "HTTP/1.1" and "host" not in headers:
            raise HttpError(400, "HTTP/1.1 request without Host (RFC 9112 §3.2)")
        return method, self._target(target), headers, version

    def _request_line(self, line: bytes) -> tuple[str, bytes, str]:
        # RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
        parts = line.split(b" ")
        if len(parts) != 3 or not all(parts):
            raise HttpError(400, "malformed request line: expected 'METHOD /path HTTP/1.1'")
        raw_method, target, raw_version = parts
        if not _TOKEN.match(raw_method):
            raise HttpError(400, "malformed method")
        match = _VERSION.match(raw_version)
        if match is None:
            raise HttpError(400, "malformed HTTP version")
        if match.group(1) != b"1":
            raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are spoken here")
        method = raw_method.decode("ascii")
        if method not in METHODS:
            raise HttpError(501, f"method {method} is not implemented")
        if not _TARGET.match(target):
            raise HttpError(400, "request target must be an absolute path (origin-form)")
        version = "HTTP/1.1" if match.group(2) != b"0" else "HTTP/1.0"
        return method, target, version

    def _headers(self, lines: Iterable[bytes]) -> dict[str, str]:
        headers: dict[str, str] = {}
        count = 0
        for line in lines:
            count += 1
            if count > self.limits.max_headers:
                raise HttpError(431, f"more than {self.limits.max_headers} header fields")
            if line[:1] in (b" ", b"\t"):
                raise HttpError(400, "obsolete line folding (RFC 9112 §5.2)")
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.match(name):
                # RFC 9112 §5.1: no whitespace between the field name and the colon.
                raise HttpError(400, "malformed header field")
            value = value.strip(b" \t")
            if not _FIELD_VALUE.match(value):
                raise HttpError(400, "invalid characters in a header field value")
            key = name.decode("ascii").lower()
            text = value.decode("ascii")
            if key in headers:
                if key in ("host", "content-length", "authorization", "content-type"):
                    if headers[key] != text or key != "content-length":
                        raise HttpError(400, f"repeated {key} header field")
                    continue
                headers[key] = f"{headers[key]}, {text}"  # RFC 9110 §5.3: combine
            else:
                headers[key] = text
        return headers

    def _content_length(self, headers: Mapping[str, str]) -> int:
        if "transfer-encoding" in headers:
            raise HttpError(501, "transfer codings are not accepted; send Content-Length")
        raw = headers.get("content-length")
        if raw is None:
            return 0
        if not raw.isdigit() or not raw.isascii() or len(raw) > 12:
            raise HttpError(400, "malformed Content-Length")
        length = int(raw)
        if length > self.limits.max_body:
            raise HttpError(413, f"body larger than {self.limits.max_body} bytes")
        return length

    def _target(self, target: bytes) -> tuple[str, tuple[str, ...], dict[str, str]]:
        text = target.decode("ascii")
        raw_path, _, raw_query = text.partition("?")
        if _PCT.search(text):
            raise HttpError(400, "malformed percent-encoding in the request target")
        path = _decode(raw_path)
        segments = tuple(_decode(part) for part in raw_path.split("/")[1:])
        query: dict[str, str] = {}
        if raw_query:
            pairs = raw_query.split("&")
            if len(pairs) > self.limits.max_query_params:
                raise HttpError(414, f"more than {self.limits.max_query_params} query parameters")
            for pair in pairs:
                key, _, value = pair.partition("=")
                query[_decode(key.replace("+", " "))] = _decode(value.replace("+", " "))
        return path, segments, query


def _decode(text: str) -> str:
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise HttpError(400, "percent-encoding is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise HttpError(400, "control characters in the request target")
    return decoded


def response(status: int, body: bytes = b"", content_type: str | None = None,
             headers: Iterable[tuple[str, str]] = (), *, head_only: bool = False,
             stream: bool = False) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (``stream``: the head of
    a response whose body follows until the connection closes, e.g. server-sent events)."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if not stream:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    lines.append("Cache-Control: no-store")
    lines.append("X-Content-Type-Options: nosniff")
    for name, value in headers:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError("CR or LF in a response header")
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only or stream else head + body

"""Request and Response values of the asyncio HTTP/3 API, and header conversions."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

HeaderPairs = tuple[tuple[bytes, bytes], ...]
HeadersLike = Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[str | bytes, str | bytes]]


def _b(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def normalize_headers(headers: HeadersLike | None) -> HeaderPairs:
    """Lowercase names, bytes everywhere (RFC 9114 §4.2: names are sent lowercase)."""
    if headers is None:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((_b(name).lower(), _b(value)) for name, value in items)


def split_pseudo(headers: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes], HeaderPairs]:
    """Separate pseudo-header fields (already validated by H3Connection) from regular ones."""
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name[:1] == b":":
            pseudo[name] = value
        else:
            regular.append((name, value))
    return pseudo, tuple(regular)


def header_value(headers: HeaderPairs, name: str | bytes) -> bytes | None:
    """The first value of field ``name`` (lowercase), or None."""
    key = _b(name).lower()
    for n, v in headers:
        if n == key:
            return v
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """The parts of a URL a request needs (RFC 9114 §4.3.1)."""

    scheme: str
    authority: str
    path: str

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"URL needs a scheme and an authority: {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.scheme, parts.netloc, path)


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the server handler sees it (regular fields only in ``headers``)."""

    method: str
    scheme: str
    authority: str
    path: str
    headers: HeaderPairs = ()
    body: bytes = b""
    trailers: HeaderPairs = ()
    protocol: str | None = None  # extended CONNECT (RFC 9220)
    stream_id: int = -1

    def header(self, name: str | bytes) -> bytes | None:
        return header_value(self.headers, name)


@dataclass(frozen=True, slots=True)
class Response:
    """A response: what a handler returns and what ``H3Client.request`` gives back."""

    status: int = 200
    headers: HeaderPairs = ()
    body: bytes = b""
    trailers: HeaderPairs = ()
    # Server side only: a body produced piece by piece (sent after ``body``, with
    # flow-control backpressure), for files and generated content too big to hold.
    stream: AsyncIterable[bytes] | None = None

    def header(self, name: str | bytes) -> bytes | None:
        return header_value(self.headers, name)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def response(
    status: int = 200,
    body: bytes | str = b"",
    headers: HeadersLike | None = None,
    trailers: HeadersLike | None = None,
) -> Response:
    """Convenience constructor accepting str bodies and any header shape."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return Response(status, normalize_headers(headers), raw, normalize_headers(trailers))

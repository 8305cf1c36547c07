"""Events the HTTP/3 layer reports to the application (small immutable values)."""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class HeadersReceived:
    """A header section (request, response — interim ones included — or trailers)."""

    stream_id: int
    headers: Headers
    stream_ended: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Content bytes of a request or response (or tunnel data on a CONNECT stream).

    ``data`` may be empty when only the end of the stream is being reported.
    """

    stream_id: int
    data: bytes
    stream_ended: bool


@dataclass(frozen=True, slots=True)
class DatagramReceived:
    """An HTTP Datagram (RFC 9297 §2) for the request on ``stream_id``."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SettingsReceived:
    """The peer's SETTINGS (RFC 9114 §7.2.4), unknown identifiers included."""

    settings: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class GoawayReceived:
    """The peer began a graceful shutdown (RFC 9114 §5.2).

    From a server ``id`` is the first request stream it will not process; no
    new request may be started.  From a client it is a push ID.
    """

    id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """A request stream was aborted, by the peer or locally after a stream error.

    ``by_peer`` is False when this side reset the stream because the peer
    violated HTTP/3 on it (for example H3_MESSAGE_ERROR for a malformed
    message, or H3_REQUEST_REJECTED after GOAWAY).
    """

    stream_id: int
    error_code: int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class StopSendingReceived:
    """The peer no longer reads what we send on ``stream_id``."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class WebTransportStreamDataReceived:
    """Payload of a WebTransport stream bound to session ``session_id``
    (draft-ietf-webtrans-http3 §4.2-4.3; the stream header is already removed).

    The first event of a peer's stream announces it (``data`` may be empty).
    """

    stream_id: int
    session_id: int
    data: bytes
    stream_ended: bool


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The HTTP/3 connection is over (closed by the peer, by the transport, or by us)."""

    error_code: int
    reason: str
    by_peer: bool


H3Event = (
    HeadersReceived
    | DataReceived
    | DatagramReceived
    | SettingsReceived
    | GoawayReceived
    | StreamReset
    | StopSendingReceived
    | WebTransportStreamDataReceived
    | ConnectionTerminated
)

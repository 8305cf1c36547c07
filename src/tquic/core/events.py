"""Events the connection engine reports to its user (``QuicConnection.next_event``).

Small immutable values (DESIGN.md "Frames and events are small immutable
dataclasses").  The endpoint layer reacts to the CID events (to route
datagrams) and to ConnectionTerminated; applications to the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from tquic.paths.network_path import NetworkPath


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The TLS handshake finished (RFC 9001 §4.1.1)."""

    alpn_protocol: str | None
    session_resumed: bool
    early_data_accepted: bool


@dataclass(frozen=True, slots=True)
class StreamDataReceived:
    """Contiguous data of a stream, in order; ``end_stream`` when the FIN was reached."""

    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer reset its sending part of a stream (RESET_STREAM, RFC 9000 §19.4)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class StopSendingReceived:
    """The peer asked us to stop sending on a stream (STOP_SENDING, RFC 9000 §19.5).

    The engine has already answered with RESET_STREAM carrying the same code (§3.5).
    """

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class DatagramReceived:
    """An unreliable DATAGRAM frame's payload (RFC 9221)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdIssued:
    """We issued a connection ID: the endpoint must route datagrams carrying it here."""

    connection_id: bytes
    sequence_number: int
    stateless_reset_token: bytes
    path_id: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionIdRetired:
    """A connection ID we issued is retired: the endpoint may stop routing it."""

    connection_id: bytes
    sequence_number: int
    path_id: int = 0


@dataclass(frozen=True, slots=True)
class PathValidated:
    """A path passed validation (PATH_CHALLENGE / PATH_RESPONSE, RFC 9000 §8.2)."""

    path_id: int
    network_path: NetworkPath


@dataclass(frozen=True, slots=True)
class PathMigrated:
    """The connection now sends on ``network_path`` (migration or NAT rebinding, §9)."""

    path_id: int
    network_path: NetworkPath


@dataclass(frozen=True, slots=True)
class PathAvailable:
    """A new path exists (client: add_path; server: the client opened it), not yet
    validated (draft-ietf-quic-multipath §"Path Initiation and Validation")."""

    path_id: int
    network_path: NetworkPath


@dataclass(frozen=True, slots=True)
class PathStatusChanged:
    """A path became backup or available: our own call (``by_peer`` False) or the peer's
    PATH_STATUS_BACKUP / PATH_STATUS_AVAILABLE (multipath §"Path Status Management")."""

    path_id: int
    backup: bool
    by_peer: bool


@dataclass(frozen=True, slots=True)
class PathFailed:
    """We declared a path broken (PTO expiries with no ACK, or validation failed); its
    unacknowledged data was reinjected on the other paths.  PathAbandoned follows."""

    path_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class PathAbandoned:
    """PATH_ABANDON sent or received: the path sends nothing more (multipath §"Path Close")."""

    path_id: int
    error_code: int
    by_peer: bool


@dataclass(frozen=True, slots=True)
class SessionTicketReceived:
    """Client: a ticket to resume (and maybe send 0-RTT on) a later connection."""

    ticket: object


@dataclass(frozen=True, slots=True)
class NewTokenReceived:
    """Client: a NEW_TOKEN token to present in the Initial of a later connection (§8.1.3)."""

    token: bytes


@dataclass(frozen=True, slots=True)
class StreamsAvailable:
    """MAX_STREAMS raised the limit on streams we may open after every stream it allowed
    was used (RFC 9000 §4.6): ``open_stream`` works again, ``available`` more times."""

    bidirectional: bool
    available: int


IDLE_TIMEOUT_REASON = "idle timeout"  # ConnectionTerminated.reason of RFC 9000 §10.1


def is_idle_timeout(reason: str, by_peer: bool) -> bool:
    """Whether a termination was our own idle timeout (the peer fell silent)."""
    return not by_peer and reason == IDLE_TIMEOUT_REASON


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The connection is closed (by us, by the peer, by idle timeout or stateless reset).

    ``frame_type`` is the frame that triggered a transport error, when known;
    ``application`` tells an application close (0x1d) from a transport one.
    """

    error_code: int
    frame_type: int | None
    reason: str
    by_peer: bool
    application: bool = False


Event = (
    HandshakeCompleted | StreamDataReceived | StreamReset | StopSendingReceived
    | DatagramReceived | ConnectionIdIssued | ConnectionIdRetired | PathValidated
    | PathMigrated | PathAvailable | PathStatusChanged | PathFailed | PathAbandoned
    | SessionTicketReceived | NewTokenReceived | StreamsAvailable | ConnectionTerminated
)

"""What HTTP/3 needs from the QUIC engine (the contract of ``tquic.core.connection``).

``H3Connection`` is written against this structural type, not the concrete
``QuicConnection``, so it runs over the real engine and over the small
in-memory stream shim the negative tests use to inject hostile bytes.
"""

from __future__ import annotations

from typing import Protocol


class QuicStreamTransport(Protocol):
    """The engine calls HTTP/3 makes (INTERFACES.md, tquic.core.connection)."""

    def open_stream(self, bidirectional: bool = True) -> int: ...

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None: ...

    def reset_stream(self, stream_id: int, error_code: int) -> None: ...

    def stop_sending(self, stream_id: int, error_code: int) -> None: ...

    def send_datagram(self, data: bytes, path_id: int | None = None) -> None: ...

    def close(self, error_code: int = 0, reason: str = "", application: bool = True) -> None: ...


def peer_max_datagram_frame_size(quic: object) -> int | None:
    """The peer's max_datagram_frame_size transport parameter (RFC 9221 §3), if known.

    RFC 9297 §2.1.1 requires it (with SETTINGS_H3_DATAGRAM=1) before sending
    HTTP/3 datagrams.  The engine contract does not name an accessor yet, so
    look for the likely spellings and treat "unknown" as "not supported".
    """
    value = getattr(quic, "peer_max_datagram_frame_size", None)
    if value is None:
        params = getattr(quic, "peer_transport_parameters", None)
        if params is None:
            # tquic.core.connection keeps them private for now (TransportParameters).
            params = getattr(quic, "_peer_params", None)
        value = getattr(params, "max_datagram_frame_size", None)
    return value if isinstance(value, int) else None

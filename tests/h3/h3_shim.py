"""A minimal in-memory QUIC stream shim implementing the engine contract HTTP/3 uses.

It emits the real engine event classes (tquic.core.events) so H3Connection sees
exactly what the engine would give it.  Used for the negative tests that need
to inject hostile bytes, and for the round trips until the real engine pair
can carry them.  Stream data can be cut into small chunks so every parser sees
frames split across arbitrary boundaries.
"""

from __future__ import annotations

from collections import deque

from tquic.core.events import (
    ConnectionTerminated,
    DatagramReceived,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)
from tquic.h3.connection import H3Connection
from tquic.h3.events import H3Event
from tquic.h3.settings import H3Config

Event = StreamDataReceived | StreamReset | StopSendingReceived | DatagramReceived | ConnectionTerminated


class ShimQuic:
    """One side: records what HTTP/3 asked of it and queues events for its peer."""

    def __init__(self, is_client: bool, chunk: int = 0, max_datagram_frame_size: int | None = 1200) -> None:
        self.is_client = is_client
        self.peer: ShimQuic | None = None
        self.events: deque[Event] = deque()
        self.chunk = chunk
        self.peer_max_datagram_frame_size = max_datagram_frame_size
        self._next_bidi = 0 if is_client else 1
        self._next_uni = 2 if is_client else 3
        self.sent: dict[int, bytearray] = {}
        self.fin: set[int] = set()
        self.resets: list[tuple[int, int]] = []
        self.stop_sendings: list[tuple[int, int]] = []
        self.datagrams: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    def open_stream(self, bidirectional: bool = True) -> int:
        if bidirectional:
            sid, self._next_bidi = self._next_bidi, self._next_bidi + 4
        else:
            sid, self._next_uni = self._next_uni, self._next_uni + 4
        return sid

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        if stream_id in self.fin:
            raise AssertionError(f"data after FIN on stream {stream_id}")
        self.sent.setdefault(stream_id, bytearray()).extend(data)
        if end_stream:
            self.fin.add(stream_id)
        if self.peer is None:
            return
        if self.chunk and len(data) > self.chunk:
            pieces = [data[i : i + self.chunk] for i in range(0, len(data), self.chunk)]
            for piece in pieces[:-1]:
                self.peer.events.append(StreamDataReceived(stream_id, piece, False))
            self.peer.events.append(StreamDataReceived(stream_id, pieces[-1], end_stream))
        else:
            self.peer.events.append(StreamDataReceived(stream_id, data, end_stream))

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        self.resets.append((stream_id, error_code))
        self.fin.add(stream_id)
        if self.peer is not None:
            self.peer.events.append(StreamReset(stream_id, error_code))

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        self.stop_sendings.append((stream_id, error_code))
        if self.peer is not None:
            # RFC 9000 §3.5: the peer's engine answers with RESET_STREAM itself.
            self.peer.events.append(StopSendingReceived(stream_id, error_code))
            if stream_id not in self.peer.fin:
                self.peer.fin.add(stream_id)
                self.events.append(StreamReset(stream_id, error_code))

    def send_datagram(self, data: bytes) -> None:
        self.datagrams.append(data)
        if self.peer is not None:
            self.peer.events.append(DatagramReceived(data))

    def close(self, error_code: int = 0, reason: str = "", application: bool = True) -> None:
        if self.closed is not None:
            return
        self.closed = (error_code, reason)
        if self.peer is not None:
            self.peer.events.append(ConnectionTerminated(error_code, None, reason, True, application))

    def next_event(self) -> Event | None:
        return self.events.popleft() if self.events else None


class H3Pair:
    """A client and a server H3Connection joined by two ShimQuic objects."""

    def __init__(
        self,
        client_config: H3Config | None = None,
        server_config: H3Config | None = None,
        chunk: int = 0,
    ) -> None:
        self.cq = ShimQuic(True, chunk)
        self.sq = ShimQuic(False, chunk)
        self.cq.peer, self.sq.peer = self.sq, self.cq
        self.client = H3Connection(self.cq, is_client=True, config=client_config)
        self.server = H3Connection(self.sq, is_client=False, config=server_config)

    def pump(self) -> tuple[list[H3Event], list[H3Event]]:
        """Deliver queued events both ways until quiet: (client events, server events)."""
        client_events: list[H3Event] = []
        server_events: list[H3Event] = []
        for _ in range(100_000):
            event = self.sq.next_event()
            if event is not None:
                server_events.extend(self.server.handle_event(event))
                continue
            event = self.cq.next_event()
            if event is not None:
                client_events.extend(self.client.handle_event(event))
                continue
            return client_events, server_events
        raise AssertionError("pump did not settle")


def server_with_raw_client(config: H3Config | None = None) -> tuple[H3Connection, ShimQuic]:
    """A server H3Connection whose peer is the test itself (inject with feed())."""
    quic = ShimQuic(False)
    return H3Connection(quic, is_client=False, config=config), quic


def client_with_raw_server(config: H3Config | None = None) -> tuple[H3Connection, ShimQuic]:
    quic = ShimQuic(True)
    return H3Connection(quic, is_client=True, config=config), quic


def feed(conn: H3Connection, stream_id: int, data: bytes, fin: bool = False) -> list[H3Event]:
    return conn.handle_event(StreamDataReceived(stream_id, data, fin))

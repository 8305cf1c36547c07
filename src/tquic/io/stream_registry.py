"""The asyncio reader and writer of each stream of one QUIC connection.

:class:`~tquic.io.protocol.QuicConnectionProtocol` drives the engine; this
registry owns the :class:`~tquic.io.streams.QuicStreamReader` /
:class:`~tquic.io.streams.QuicStreamWriter` pairs it hands to applications and
routes the engine's stream events to them: data and FIN to the reader,
RESET_STREAM (RFC 9000 §19.4) to the reader, STOP_SENDING (§19.5) to the writer,
the connection's end to both.  A stream the peer opens is handed back once, by the
call that created it (the protocol runs its stream handler or queues it for
``accept_stream``).

The registry refers to its protocol weakly and calls nothing of it: the protocol that
owns it is then no reference cycle and is freed by reference counting when its
connection ends (issue 19: the cyclic collector took ~14 % of a busy server's CPU).
The writers it creates hold their protocol as an application expects.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from tquic.core import events as ev
from tquic.io.streams import QuicStreamReader, QuicStreamWriter, StreamError, StreamResetError

if TYPE_CHECKING:
    from tquic.io.protocol import QuicConnectionProtocol

Opened = tuple[QuicStreamReader, QuicStreamWriter]  # a stream the peer opened


def is_local_stream(stream_id: int, is_client: bool) -> bool:
    # RFC 9000 §2.1: the low bit of a stream ID is 0 for client-initiated streams.
    return (stream_id & 1) == (0 if is_client else 1)


def is_unidirectional(stream_id: int) -> bool:
    return bool(stream_id & 2)  # RFC 9000 §2.1


class StreamRegistry:
    """Readers and writers by stream ID (``readers``, ``writers``: read-only for callers)."""

    __slots__ = ("_is_client", "_protocol", "readers", "writers")

    def __init__(self, protocol: QuicConnectionProtocol, *, is_client: bool) -> None:
        self._protocol = weakref.ref(protocol)
        self._is_client = is_client
        self.readers: dict[int, QuicStreamReader] = {}
        self.writers: dict[int, QuicStreamWriter] = {}

    def create(self, stream_id: int) -> tuple[QuicStreamReader, QuicStreamWriter]:
        reader = QuicStreamReader(stream_id)
        writer = QuicStreamWriter(self._owner(), stream_id)
        self.readers[stream_id] = reader
        self.writers[stream_id] = writer
        return reader, writer

    def writer(self, stream_id: int) -> QuicStreamWriter:
        """The stream's writer, created on first use (a stream an HTTP/3 layer drives)."""
        writer = self.writers.get(stream_id)
        if writer is None:
            writer = self.writers[stream_id] = QuicStreamWriter(self._owner(), stream_id)
        return writer

    def _owner(self) -> QuicConnectionProtocol:
        protocol = self._protocol()
        if protocol is None:  # the protocol owns the registry: it cannot be gone
            raise ReferenceError("the stream registry outlived its connection")
        return protocol

    def wake_writers(self, writable: Callable[[int], bool]) -> None:
        """Wake the writers waiting in ``drain()`` whose stream has send-buffer room."""
        for stream_id, writer in self.writers.items():
            if writer.waiting and writable(stream_id):
                writer.wake_drain()

    def fail(self, error: BaseException) -> None:
        """The connection ended: every reader and writer raises ``error`` from now on."""
        for reader in self.readers.values():
            reader.set_exception(error)
        for writer in self.writers.values():
            writer.set_exception(error)

    # -- the engine's stream events -------------------------------------------------------

    def data_received(self, event: ev.StreamDataReceived) -> Opened | None:
        """Feed the stream's reader; returns the stream if the peer opened it now."""
        opened = None
        reader = self.readers.get(event.stream_id)
        if reader is None:
            reader, opened = self._peer_stream(event.stream_id)
        reader.feed_data(event.data)
        if event.end_stream:
            reader.feed_eof()
        return opened

    def reset(self, event: ev.StreamReset) -> Opened | None:
        """Fail the stream's reader; returns the stream if the peer opened it now."""
        opened = None
        reader = self.readers.get(event.stream_id)
        if reader is None:
            reader, opened = self._peer_stream(event.stream_id)
        reader.set_exception(StreamResetError(
            f"stream {event.stream_id} reset by peer (error 0x{event.error_code:x})",
            event.error_code))
        return opened

    def stop_sending(self, event: ev.StopSendingReceived) -> None:
        writer = self.writers.get(event.stream_id)
        if writer is not None:
            writer.set_exception(StreamError(
                f"peer stopped stream {event.stream_id} (error 0x{event.error_code:x})",
                event.error_code))

    def _peer_stream(self, stream_id: int) -> tuple[QuicStreamReader, Opened | None]:
        """A stream first heard of in an event: its reader, and the pair to announce
        (None for one of our own we had forgotten)."""
        reader, writer = self.create(stream_id)
        if is_local_stream(stream_id, self._is_client):
            return reader, None  # e.g. data on a stream we opened but forgot
        if is_unidirectional(stream_id):
            writer._closed = True  # we cannot send on the peer's unidirectional stream
        return reader, (reader, writer)

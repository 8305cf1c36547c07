"""Streams seam of the connection: the application's stream calls, stream
creation and freeing, and what happens to each retransmission record when
its packet is acknowledged or lost (RFC 9000 §13.3: frames are resent with
current values, never packets).
"""

from __future__ import annotations

from collections.abc import Iterable

from tquic.core.conn_base import ConnectionBase
from tquic.core.records import (
    AckRecord,
    CryptoRecord,
    FrameRecord,
    HandshakeDoneRecord,
    MaxDataRecord,
    MaxStreamDataRecord,
    MaxStreamsRecord,
    PmtuProbeRecord,
    Record,
    ResetStreamRecord,
    RetireCidRecord,
    StopSendingRecord,
    StreamRecord,
)
from tquic.core.recv_stream import RecvStream
from tquic.core.send_stream import SendState, SendStream, StreamUsageError
from tquic.core.stream_ids import (
    can_receive,
    can_send,
    is_locally_initiated,
    is_unidirectional,
)
from tquic.paths.path import Path
from tquic.paths.sent_packets import SentPacket


class StreamsMixin(ConnectionBase):
    """open_stream / send_stream_data / reset_stream / stop_sending and record callbacks."""

    _fin_reported: set[int]
    _pending_msd: set[int]
    _max_data_pending: bool

    # -- application API ------------------------------------------------------------------

    def open_stream(self, bidirectional: bool = True) -> int:
        """A new locally initiated stream ID; StreamUsageError when the peer's limit is
        reached (a STREAMS_BLOCKED frame is then sent, RFC 9000 §4.6)."""
        limits = self._streams_bidi if bidirectional else self._streams_uni
        stream_id = limits.open_local()
        if stream_id is None:
            blocked = limits.take_blocked_signal()
            if blocked is not None:
                from tquic.wire.frames import StreamsBlockedFrame

                self._control.append(FrameRecord(StreamsBlockedFrame(blocked, bidirectional)))
            raise StreamUsageError("stream limit reached; wait for MAX_STREAMS")
        self._create_stream(stream_id)
        return stream_id

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue ``data`` on a stream (opening a peer's stream part is not allowed)."""
        stream = self._send_streams.get(stream_id)
        if stream is None:
            if not can_send(stream_id, self._is_client) or is_locally_initiated(
                    stream_id, self._is_client):
                raise StreamUsageError(f"stream {stream_id} cannot be written")
            raise StreamUsageError(f"stream {stream_id} is not open")
        stream.write(data, end_stream)
        self._send_queue[stream_id] = None

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Abandon sending on a stream (RESET_STREAM, RFC 9000 §3.1)."""
        stream = self._send_streams.get(stream_id)
        if stream is None:
            raise StreamUsageError(f"stream {stream_id} has no open sending part")
        if stream.reset(error_code):
            self._send_queue.pop(stream_id, None)
            self._control.append(ResetStreamRecord(stream_id))

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        """Ask the peer to stop sending on a stream (STOP_SENDING, RFC 9000 §3.5)."""
        if self._undelivered:
            self._deliver_pending()  # what arrived before the call is still delivered
        stream = self._recv_streams.get(stream_id)
        if stream is None:
            if not can_receive(stream_id, self._is_client):
                raise StreamUsageError(f"stream {stream_id} has no receiving part")
            return
        if stream.stop_sending(error_code):
            self._control.append(StopSendingRecord(stream_id))

    def stream_writable(self, stream_id: int) -> int:
        """Bytes the application may queue on a stream before its buffer is full."""
        stream = self._send_streams.get(stream_id)
        return 0 if stream is None else stream.writable_bytes

    def unacknowledged_stream_bytes(self) -> int:
        """Stream bytes written but not yet acknowledged by the peer (reset streams
        excluded): what a graceful close should let arrive first."""
        return sum(stream.held_bytes for stream in self._send_streams.values()
                   if stream.state < SendState.RESET_SENT and not stream.reset_pending)

    # -- creation and freeing --------------------------------------------------------------

    def _create_stream(self, stream_id: int) -> None:
        c = self._config
        peer = self._peer_params or self._remembered_params
        local = is_locally_initiated(stream_id, self._is_client)
        uni = is_unidirectional(stream_id)
        if can_send(stream_id, self._is_client):
            if peer is None:
                credit = 0
            elif uni:
                credit = peer.initial_max_stream_data_uni
            elif local:
                credit = peer.initial_max_stream_data_bidi_remote
            else:
                credit = peer.initial_max_stream_data_bidi_local
            self._send_streams[stream_id] = SendStream(
                stream_id, max_stream_data=credit, connection_credit=self._conn_credit,
                max_buffer=c.send_buffer_size)
        if can_receive(stream_id, self._is_client):
            self._recv_streams[stream_id] = RecvStream(
                stream_id, max_stream_data=c.initial_max_stream_data,
                max_window=c.max_stream_data, connection_window=self._conn_window)

    def _maybe_free_stream(self, stream_id: int) -> None:
        send = self._send_streams.get(stream_id)
        recv = self._recv_streams.get(stream_id)
        if (send is not None and not send.is_finished) or (
                recv is not None and not recv.is_finished):
            return
        if send is None and recv is None:
            return
        self._send_streams.pop(stream_id, None)
        self._recv_streams.pop(stream_id, None)
        self._send_queue.pop(stream_id, None)
        self._fin_reported.discard(stream_id)
        self._pending_msd.discard(stream_id)
        if not is_locally_initiated(stream_id, self._is_client):
            limits = self._streams_uni if is_unidirectional(stream_id) else self._streams_bidi
            limits.on_remote_stream_closed()
            if limits.max_streams_update() is not None:
                self._control.append(MaxStreamsRecord(not is_unidirectional(stream_id)))

    # -- retransmission records ----------------------------------------------------------

    def _on_packets_acked(self, packets: Iterable[SentPacket], path: Path) -> None:
        """_on_records_acked for each newly acknowledged packet, in order, except that
        consecutive packets each carrying one STREAM frame that continues the previous
        one's data (no FIN) are acknowledged as one range: a bulk ACK covers hundreds of
        packets, and this makes it one SendStream.on_ack instead of one per packet."""
        run_id = run_start = run_end = -1  # the range being merged (run_id -1: none)
        for packet in packets:
            records = packet.frames
            if len(records) == 1:
                record = records[0]
                if isinstance(record, StreamRecord) and not record.fin:
                    if record.stream_id == run_id and record.offset == run_end:
                        run_end += record.length
                        continue
                    if run_id >= 0:
                        self._stream_range_acked(run_id, run_start, run_end - run_start)
                    run_id, run_start = record.stream_id, record.offset
                    run_end = run_start + record.length
                    continue
            if run_id >= 0:
                self._stream_range_acked(run_id, run_start, run_end - run_start)
                run_id = -1
            self._on_records_acked(records, path)  # type: ignore[arg-type]
        if run_id >= 0:
            self._stream_range_acked(run_id, run_start, run_end - run_start)

    def _stream_range_acked(self, stream_id: int, offset: int, length: int) -> None:
        stream = self._send_streams.get(stream_id)
        if stream is not None:
            stream.on_ack(offset, length, False)
            if stream.is_finished:
                self._maybe_free_stream(stream_id)

    def _on_records_acked(self, records: Iterable[Record], path: Path) -> None:
        for record in records:
            if isinstance(record, StreamRecord):
                stream = self._send_streams.get(record.stream_id)
                if stream is not None:
                    stream.on_ack(record.offset, record.length, record.fin)
                    if stream.is_finished:
                        self._maybe_free_stream(record.stream_id)
            elif isinstance(record, AckRecord):
                record.space.ack_tracker.on_ack_acked(record.largest)
            elif isinstance(record, CryptoRecord):
                crypto = self._crypto_send.get(record.epoch)
                if crypto is not None:
                    crypto.on_ack(record.offset, record.length, False)
            elif isinstance(record, ResetStreamRecord):
                stream = self._send_streams.get(record.stream_id)
                if stream is not None:
                    stream.on_reset_acked()
                    self._maybe_free_stream(record.stream_id)
            elif isinstance(record, PmtuProbeRecord):
                probed = self._paths.get(record.path_id)
                if probed is not None and probed.pmtud is not None:
                    size = probed.pmtud.on_probe_acked(record.size)
                    if size > probed.max_datagram_size:
                        probed.set_max_datagram_size(size)

    def _on_packet_lost(self, packet: SentPacket, path: Path) -> None:
        """``packet`` is lost (or its path is gone): queue what it carried again -- but
        not stream data that was already queued again while it was in flight (a
        multipath reinjection): that copy is in flight elsewhere, with its own loss
        recovery, and a third copy would only wait behind it."""
        frames: list[Record] = packet.frames  # type: ignore[assignment]
        if packet.resent:
            frames = [r for r in frames if not isinstance(r, StreamRecord)]
        self._on_records_lost(frames, path)

    def _on_records_lost(self, records: Iterable[Record], path: Path) -> None:
        control = self._control
        resent = False
        for record in records:
            if isinstance(record, StreamRecord):
                stream = self._send_streams.get(record.stream_id)
                if stream is not None:
                    stream.on_lost(record.offset, record.length, record.fin)
                    resent = True
                    if stream.has_data_to_send():
                        self._send_queue[record.stream_id] = None
            elif isinstance(record, CryptoRecord):
                crypto = self._crypto_send.get(record.epoch)
                if crypto is not None and record.epoch not in self._discarded_epochs:
                    crypto.on_lost(record.offset, record.length, False)
            elif isinstance(record, (FrameRecord, RetireCidRecord, MaxStreamsRecord,
                                     StopSendingRecord)):
                control.append(record)
            elif isinstance(record, HandshakeDoneRecord):
                self._handshake_done_pending = True
            elif isinstance(record, MaxDataRecord):
                if not self._max_data_pending:
                    self._max_data_pending = True
                    control.append(record)
            elif isinstance(record, MaxStreamDataRecord):
                sid = record.stream_id
                if sid in self._recv_streams and sid not in self._pending_msd:
                    self._pending_msd.add(sid)
                    control.append(record)
            elif isinstance(record, ResetStreamRecord):
                stream = self._send_streams.get(record.stream_id)
                if stream is not None:
                    stream.on_reset_lost()
                    control.append(record)
            elif isinstance(record, PmtuProbeRecord):
                probed = self._paths.get(record.path_id)
                if probed is not None and probed.pmtud is not None:
                    probed.pmtud.on_probe_lost(record.size)
        if resent:
            path.packets_retransmitted += 1

"""Streams of the connection: the application's stream calls, stream
creation and freeing, and what happens to each retransmission record when
its packet is acknowledged or lost (RFC 9000 §13.3: frames are resent with
current values, never packets).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tquic.core.flow import ReceiveWindow, SendCredit
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
from tquic.core.recv_stream import RecvState, RecvStream
from tquic.core.send_stream import SendState, SendStream, StreamUsageError
from tquic.core.stream_ids import (
    StreamLimits,
    can_receive,
    can_send,
    is_locally_initiated,
    is_unidirectional,
)
from tquic.paths.path import Path
from tquic.paths.sent_packets import SentPacket
from tquic.wire.frames import (
    Frame,
    HandshakeDoneFrame,
    MaxDataFrame,
    MaxStreamDataFrame,
    MaxStreamsFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StopSendingFrame,
)

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection


class Streams:
    """The connection's streams and what ACK and loss do to every retransmission
    record.  Owns the send and receive streams, the send queue (stream IDs with data
    to send, in round-robin order), the connection's flow-control credit and window
    (RFC 9000 §4), the stream limits (§4.6) and the streams whose received data is
    not yet an event."""

    __slots__ = ("_c", "bidi", "credit", "fin_reported", "max_data_pending", "pending_msd",
                 "recv", "send", "send_queue", "undelivered", "uni", "window")

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn
        c = conn._config
        is_client = conn._is_client
        self.send: dict[int, SendStream] = {}
        self.recv: dict[int, RecvStream] = {}
        self.send_queue: dict[int, None] = {}  # stream IDs with data to send, in turn
        # Streams that received STREAM frames not yet turned into events (frame_handlers.py).
        self.undelivered: dict[int, tuple[RecvStream, Path, float]] = {}
        self.bidi = StreamLimits(is_client=is_client, unidirectional=False,
                                 local_max=c.max_streams_bidi)
        self.uni = StreamLimits(is_client=is_client, unidirectional=True,
                                local_max=c.max_streams_uni)
        self.credit = SendCredit(0)
        self.window = ReceiveWindow(c.initial_max_data, c.max_data)
        self.fin_reported: set[int] = set()
        self.pending_msd: set[int] = set()  # MAX_STREAM_DATA queued for these streams
        self.max_data_pending = False  # a MAX_DATA is queued

    def open_stream(self, bidirectional: bool = True) -> int:
        """A new locally initiated stream ID; StreamUsageError when the peer's limit is
        reached (a STREAMS_BLOCKED frame is then sent, RFC 9000 §4.6)."""
        c = self._c
        limits = self.bidi if bidirectional else self.uni
        stream_id = limits.open_local()
        if stream_id is None:
            blocked = limits.take_blocked_signal()
            if blocked is not None:
                from tquic.wire.frames import StreamsBlockedFrame

                c._control.push(FrameRecord(StreamsBlockedFrame(blocked, bidirectional)))
            raise StreamUsageError("stream limit reached; wait for MAX_STREAMS")
        self.create(stream_id)
        return stream_id

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue ``data`` on a stream (opening a peer's stream part is not allowed)."""
        c = self._c
        stream = self.send.get(stream_id)
        if stream is None:
            if not can_send(stream_id, c._is_client) or is_locally_initiated(
                    stream_id, c._is_client):
                raise StreamUsageError(f"stream {stream_id} cannot be written")
            raise StreamUsageError(f"stream {stream_id} is not open")
        stream.write(data, end_stream)
        self.send_queue[stream_id] = None

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Abandon sending on a stream (RESET_STREAM, RFC 9000 §3.1)."""
        c = self._c
        stream = self.send.get(stream_id)
        if stream is None:
            raise StreamUsageError(f"stream {stream_id} has no open sending part")
        if stream.reset(error_code):
            self.send_queue.pop(stream_id, None)
            c._control.push(ResetStreamRecord(stream_id))

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        """Ask the peer to stop sending on a stream (STOP_SENDING, RFC 9000 §3.5)."""
        c = self._c
        if self.undelivered:
            c._frame_handlers.deliver_pending()  # what arrived before the call is still delivered
        stream = self.recv.get(stream_id)
        if stream is None:
            if not can_receive(stream_id, c._is_client):
                raise StreamUsageError(f"stream {stream_id} has no receiving part")
            return
        if stream.stop_sending(error_code):
            c._control.push(StopSendingRecord(stream_id))

    def stream_writable(self, stream_id: int) -> int:
        """Bytes the application may queue on a stream before its buffer is full."""
        stream = self.send.get(stream_id)
        return 0 if stream is None else stream.writable_bytes

    def unacknowledged_stream_bytes(self) -> int:
        """Stream bytes written but not yet acknowledged by the peer (reset streams
        excluded): what a graceful close should let arrive first."""
        return sum(stream.held_bytes for stream in self.send.values()
                   if stream.state < SendState.RESET_SENT and not stream.reset_pending)

    def create(self, stream_id: int) -> None:
        conn = self._c
        c = conn._config
        peer = conn._peer_params or conn._remembered_params
        local = is_locally_initiated(stream_id, conn._is_client)
        uni = is_unidirectional(stream_id)
        if can_send(stream_id, conn._is_client):
            if peer is None:
                credit = 0
            elif uni:
                credit = peer.initial_max_stream_data_uni
            elif local:
                credit = peer.initial_max_stream_data_bidi_remote
            else:
                credit = peer.initial_max_stream_data_bidi_local
            self.send[stream_id] = SendStream(
                stream_id, max_stream_data=credit, connection_credit=self.credit,
                max_buffer=c.send_buffer_size)
        if can_receive(stream_id, conn._is_client):
            self.recv[stream_id] = RecvStream(
                stream_id, max_stream_data=c.initial_max_stream_data,
                max_window=c.max_stream_data, connection_window=self.window)

    def maybe_free(self, stream_id: int) -> None:
        c = self._c
        send = self.send.get(stream_id)
        recv = self.recv.get(stream_id)
        if (send is not None and not send.is_finished) or (
                recv is not None and not recv.is_finished):
            return
        if send is None and recv is None:
            return
        self.send.pop(stream_id, None)
        self.recv.pop(stream_id, None)
        self.send_queue.pop(stream_id, None)
        self.fin_reported.discard(stream_id)
        self.pending_msd.discard(stream_id)
        if not is_locally_initiated(stream_id, c._is_client):
            limits = self.uni if is_unidirectional(stream_id) else self.bidi
            limits.on_remote_stream_closed()
            if limits.max_streams_update() is not None:
                c._control.push(MaxStreamsRecord(not is_unidirectional(stream_id)))

    def on_packets_acked(self, packets: Iterable[SentPacket], path: Path) -> None:
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
                        self._range_acked(run_id, run_start, run_end - run_start)
                    run_id, run_start = record.stream_id, record.offset
                    run_end = run_start + record.length
                    continue
            if run_id >= 0:
                self._range_acked(run_id, run_start, run_end - run_start)
                run_id = -1
            self.on_records_acked(records, path)  # type: ignore[arg-type]
        if run_id >= 0:
            self._range_acked(run_id, run_start, run_end - run_start)

    def _range_acked(self, stream_id: int, offset: int, length: int) -> None:
        stream = self.send.get(stream_id)
        if stream is not None:
            stream.on_ack(offset, length, False)
            if stream.is_finished:
                self.maybe_free(stream_id)

    def on_records_acked(self, records: Iterable[Record], path: Path) -> None:
        c = self._c
        for record in records:
            if isinstance(record, StreamRecord):
                stream = self.send.get(record.stream_id)
                if stream is not None:
                    stream.on_ack(record.offset, record.length, record.fin)
                    if stream.is_finished:
                        self.maybe_free(record.stream_id)
            elif isinstance(record, AckRecord):
                record.space.ack_tracker.on_ack_acked(record.largest)
            elif isinstance(record, CryptoRecord):
                c._crypto.on_acked(record)
            elif isinstance(record, ResetStreamRecord):
                stream = self.send.get(record.stream_id)
                if stream is not None:
                    stream.on_reset_acked()
                    self.maybe_free(record.stream_id)
            elif isinstance(record, PmtuProbeRecord):
                probed = c._paths.get(record.path_id)
                if probed is not None and probed.pmtud is not None:
                    size = probed.pmtud.on_probe_acked(record.size)
                    if size > probed.max_datagram_size:
                        probed.set_max_datagram_size(size)

    def on_packet_lost(self, packet: SentPacket, path: Path) -> None:
        """``packet`` is lost (or its path is gone): queue what it carried again -- but
        not stream data that was already queued again while it was in flight (a
        multipath reinjection): that copy is in flight elsewhere, with its own loss
        recovery, and a third copy would only wait behind it."""
        frames: list[Record] = packet.frames  # type: ignore[assignment]
        if packet.resent:
            frames = [r for r in frames if not isinstance(r, StreamRecord)]
        self.on_records_lost(frames, path)

    def on_records_lost(self, records: Iterable[Record], path: Path) -> None:
        c = self._c
        push = c._control.push
        resent = False
        for record in records:
            if isinstance(record, StreamRecord):
                stream = self.send.get(record.stream_id)
                if stream is not None:
                    stream.on_lost(record.offset, record.length, record.fin)
                    resent = True
                    if stream.has_data_to_send():
                        self.send_queue[record.stream_id] = None
            elif isinstance(record, CryptoRecord):
                c._crypto.on_lost(record)
            elif isinstance(record, (FrameRecord, RetireCidRecord, MaxStreamsRecord,
                                     StopSendingRecord)):
                push(record)
            elif isinstance(record, HandshakeDoneRecord):
                c._control.queue_handshake_done()
            elif isinstance(record, MaxDataRecord):
                if not self.max_data_pending:
                    self.max_data_pending = True
                    push(record)
            elif isinstance(record, MaxStreamDataRecord):
                sid = record.stream_id
                if sid in self.recv and sid not in self.pending_msd:
                    self.pending_msd.add(sid)
                    push(record)
            elif isinstance(record, ResetStreamRecord):
                stream = self.send.get(record.stream_id)
                if stream is not None:
                    stream.on_reset_lost()
                    push(record)
            elif isinstance(record, PmtuProbeRecord):
                probed = c._paths.get(record.path_id)
                if probed is not None and probed.pmtud is not None:
                    probed.pmtud.on_probe_lost(record.size)
        if resent:
            path.packets_retransmitted += 1

    def control_frame(self, record: Record) -> Frame | None:
        """The frame to send for a queued control record, with current values (RFC
        9000 §13.3), or None when it is no longer needed."""
        if isinstance(record, FrameRecord):
            frame: Frame = record.frame
            return frame
        if isinstance(record, MaxDataRecord):
            self.max_data_pending = False
            return MaxDataFrame(self.window.limit)
        if isinstance(record, MaxStreamDataRecord):
            sid = record.stream_id
            self.pending_msd.discard(sid)
            rs = self.recv.get(sid)
            if rs is None or rs.state != RecvState.RECV:
                return None
            return MaxStreamDataFrame(sid, rs.window.limit)
        if isinstance(record, ResetStreamRecord):
            ss = self.send.get(record.stream_id)
            if ss is None:
                return None
            reset = ss.reset_frame()
            return None if reset is None else ResetStreamFrame(record.stream_id, reset[0],
                                                               reset[1])
        if isinstance(record, StopSendingRecord):
            rs = self.recv.get(record.stream_id)
            if rs is None or not rs.needs_stop_sending or rs.stop_sending_error_code is None:
                return None
            return StopSendingFrame(record.stream_id, rs.stop_sending_error_code)
        if isinstance(record, RetireCidRecord):
            return RetireConnectionIdFrame(record.sequence_number)
        if isinstance(record, MaxStreamsRecord):
            limits = self.bidi if record.bidirectional else self.uni
            return MaxStreamsFrame(limits.local_max, record.bidirectional)
        if isinstance(record, HandshakeDoneRecord):
            return HandshakeDoneFrame()
        return None

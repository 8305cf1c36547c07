"""Frame handling: one handler per frame type, after the packet-type check.

RFC 9000 §12.4/§12.5 (Table 3): a frame in a packet type that may not carry
it is a PROTOCOL_VIOLATION; every handler enforces the frame's own rules
(§19) and raises QuicError with the RFC's code, which the connection turns
into CONNECTION_CLOSE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tquic.core.conn_base import Epoch
from tquic.core.events import (
    ConnectionIdRetired,
    DatagramReceived,
    NewTokenReceived,
    PathValidated,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
    StreamsAvailable,
)
from tquic.core.records import (
    MAX_DATA,
    FrameRecord,
    MaxStreamDataRecord,
    MaxStreamsRecord,
    ResetStreamRecord,
)
from tquic.core.recv_stream import RecvStream
from tquic.core.send_stream import SendStream
from tquic.core.stream_ids import check_frame_direction, is_unidirectional
from tquic.paths.ack_tracker import decode_ack_delay
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path
from tquic.wire.epochs import SpaceId, space_of
from tquic.wire.errors import QuicError, TransportErrorCode
from tquic.wire.frames import (
    FRAME_RULES,
    AckFrame,
    AckFrequencyFrame,
    ConnectionCloseFrame,
    CryptoFrame,
    DataBlockedFrame,
    DatagramFrame,
    Frame,
    FrameType,
    HandshakeDoneFrame,
    ImmediateAckFrame,
    MaxDataFrame,
    MaxPathIdFrame,
    MaxStreamDataFrame,
    MaxStreamsFrame,
    NewConnectionIdFrame,
    NewTokenFrame,
    PaddingFrame,
    PathAbandonFrame,
    PathAckFrame,
    PathChallengeFrame,
    PathCidsBlockedFrame,
    PathNewConnectionIdFrame,
    PathResponseFrame,
    PathRetireConnectionIdFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
    PingFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StopSendingFrame,
    StreamDataBlockedFrame,
    StreamFrame,
    StreamsBlockedFrame,
)
from tquic.wire.packet import PacketType

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection
    from tquic.core.control_queue import ControlQueue
    from tquic.core.crypto_levels import CryptoLevels

PV = TransportErrorCode.PROTOCOL_VIOLATION
# Received stream data is turned into events in batches of up to this many bytes
# (see _on_stream).
DELIVERY_BATCH = 64 << 10

# One representative codepoint per frame class, for the Table 3 check.
_CLASS_TYPE: dict[type, int] = {
    PaddingFrame: FrameType.PADDING, PingFrame: FrameType.PING, AckFrame: FrameType.ACK,
    ResetStreamFrame: FrameType.RESET_STREAM, StopSendingFrame: FrameType.STOP_SENDING,
    CryptoFrame: FrameType.CRYPTO, NewTokenFrame: FrameType.NEW_TOKEN,
    StreamFrame: FrameType.STREAM, MaxDataFrame: FrameType.MAX_DATA,
    MaxStreamDataFrame: FrameType.MAX_STREAM_DATA, MaxStreamsFrame: FrameType.MAX_STREAMS_BIDI,
    DataBlockedFrame: FrameType.DATA_BLOCKED,
    StreamDataBlockedFrame: FrameType.STREAM_DATA_BLOCKED,
    StreamsBlockedFrame: FrameType.STREAMS_BLOCKED_BIDI,
    NewConnectionIdFrame: FrameType.NEW_CONNECTION_ID,
    RetireConnectionIdFrame: FrameType.RETIRE_CONNECTION_ID,
    PathChallengeFrame: FrameType.PATH_CHALLENGE, PathResponseFrame: FrameType.PATH_RESPONSE,
    ConnectionCloseFrame: FrameType.CONNECTION_CLOSE, HandshakeDoneFrame: FrameType.HANDSHAKE_DONE,
    ImmediateAckFrame: FrameType.IMMEDIATE_ACK, AckFrequencyFrame: FrameType.ACK_FREQUENCY,
    DatagramFrame: FrameType.DATAGRAM, PathAckFrame: FrameType.PATH_ACK,
    PathAbandonFrame: FrameType.PATH_ABANDON, PathStatusBackupFrame: FrameType.PATH_STATUS_BACKUP,
    PathStatusAvailableFrame: FrameType.PATH_STATUS_AVAILABLE,
    PathNewConnectionIdFrame: FrameType.PATH_NEW_CONNECTION_ID,
    PathRetireConnectionIdFrame: FrameType.PATH_RETIRE_CONNECTION_ID,
    MaxPathIdFrame: FrameType.MAX_PATH_ID, PathsBlockedFrame: FrameType.PATHS_BLOCKED,
    PathCidsBlockedFrame: FrameType.PATH_CIDS_BLOCKED,
}
_ALLOWED: dict[type, int] = {cls: FRAME_RULES[t].packets for cls, t in _CLASS_TYPE.items()}
_APP_CLOSE_ALLOWED = FRAME_RULES[FrameType.APPLICATION_CLOSE].packets
_NOT_ELICITING = frozenset((PaddingFrame, AckFrame, PathAckFrame, ConnectionCloseFrame))
_PROBING = frozenset((PaddingFrame, NewConnectionIdFrame, PathChallengeFrame, PathResponseFrame))
_MULTIPATH = frozenset((PathAckFrame, PathAbandonFrame, PathStatusBackupFrame,
                        PathStatusAvailableFrame, PathNewConnectionIdFrame,
                        PathRetireConnectionIdFrame, MaxPathIdFrame, PathsBlockedFrame,
                        PathCidsBlockedFrame))
EPOCH_PACKET_BIT: dict[int, int] = {Epoch.INITIAL: 1 << PacketType.INITIAL,
                    Epoch.HANDSHAKE: 1 << PacketType.HANDSHAKE,
                    Epoch.ZERO_RTT: 1 << PacketType.ZERO_RTT,
                    Epoch.ONE_RTT: 1 << PacketType.ONE_RTT}

Handler = Callable[[Any, Any, int, Path, float], None]


def frame_type_for(frame: Frame) -> int:
    return _CLASS_TYPE[type(frame)]


class FrameHandlers:
    """One handler per frame type, each telling the component that owns the state what
    the peer said (RFC 9000 §19; multipath frames: core/multipath.py).  Owns nothing:
    it is the dispatch table of the connection's receive path."""

    __slots__ = ("_c", "_control", "_crypto")

    def __init__(self, conn: QuicConnection, crypto: CryptoLevels, control: ControlQueue) -> None:
        self._c = conn
        self._crypto = crypto  # CRYPTO frames, the Initial/Handshake spaces, 1-RTT keys
        self._control = control  # MAX_DATA, MAX_STREAM_DATA, ... owed in answer

    def handle(self, frames: list[Frame], epoch: int, path: Path, dcid: bytes,
                       network_path: NetworkPath, now: float) -> tuple[bool, bool]:
        """Apply every frame of one packet; (ack-eliciting, non-probing)."""
        c = self._c
        bit = EPOCH_PACKET_BIT[epoch]
        c._rx_dcid = dcid
        c._rx_network_path = network_path
        eliciting = False
        non_probing = False
        handlers = _HANDLERS
        for frame in frames:
            cls = type(frame)
            if not _ALLOWED[cls] & bit or (
                cls is ConnectionCloseFrame and frame.is_application  # type: ignore[union-attr]
                and not _APP_CLOSE_ALLOWED & bit
            ):
                raise QuicError(PV, f"{cls.__name__} not allowed in this packet type",
                                frame_type=_CLASS_TYPE[cls])
            handlers[cls](self, frame, epoch, path, now)
            if cls not in _NOT_ELICITING:
                eliciting = True
            if cls not in _PROBING:
                non_probing = True
        return eliciting, non_probing

    def _on_ack(self, frame: AckFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        if epoch in (Epoch.INITIAL, Epoch.HANDSHAKE):
            self._process_long_ack(frame, epoch, path, now)
            return
        # draft-ietf-quic-multipath §"Handling ACK and PATH_ACK": an ACK frame
        # acknowledges packets of path 0.
        target = c._paths.get(0) if c._mp else path
        if target is None or (not target.usable and c._mp):
            return
        self.process_ack(target, frame.ranges, frame.ack_delay, frame.ecn, FrameType.ACK, now)

    def _process_long_ack(self, frame: AckFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        space = self._crypto.spaces.get(epoch)
        if space is None:
            # The epoch was discarded by an earlier frame of this packet (the handshake
            # completed): nothing of it is tracked any more (RFC 9002 §6.4).
            return
        space_id = space_of(epoch)
        largest = frame.ranges[0][1]
        if largest >= space.next_pn:
            # RFC 9000 §13.1: acknowledging a packet never sent.
            raise QuicError(PV, f"ACK of unsent packet {largest}", frame_type=FrameType.ACK)
        if space.largest_acked is None or largest > space.largest_acked:
            space.largest_acked = largest
        outcome = path.recovery.on_ack_received(space_id, frame.ranges, 0.0, now,
                                                ecn_counts=frame.ecn)
        if c._qlog is not None:
            c._qlog.ack_outcome(now, path.recovery, path.path_id, int(space_id),
                                   outcome.acked, outcome.lost)
        for packet in outcome.acked:
            c._streams.on_records_acked(packet.frames, path)
        for packet in outcome.lost:
            c._streams.on_packet_lost(packet, path)
        c._loss_stats[0] += len(outcome.lost)

    def process_ack(self, target: Path, ranges: tuple[tuple[int, int], ...], ack_delay: int,
                     ecn: tuple[int, int, int] | None, frame_type: int, now: float) -> None:
        """An ACK / PATH_ACK for ``target``'s application packet-number space."""
        c = self._c
        space = target.space
        exponent = c._peer_params.ack_delay_exponent if c._peer_params else 3
        delay = decode_ack_delay(ack_delay, exponent)
        largest = ranges[0][1]
        if largest >= space.next_pn:
            # RFC 9000 §13.1: acknowledging a packet never sent.
            raise QuicError(PV, f"ACK of unsent packet {largest}", frame_type=frame_type)
        if space.largest_acked is None or largest > space.largest_acked:
            space.largest_acked = largest
        floor = target.recovery_first_pn
        if floor and ranges[-1][0] < floor:
            ranges = tuple((max(lo, floor), hi) for lo, hi in ranges if hi >= floor)
            if not ranges:
                return
        outcome = target.recovery.on_ack_received(SpaceId.APPLICATION, ranges, delay, now,
                                                  ecn_counts=ecn)
        if c._qlog is not None:
            c._qlog.ack_outcome(now, target.recovery, target.path_id, 2, outcome.acked,
                                   outcome.lost)
        if outcome.acked:
            c._multipath.on_path_acked(target, now)
            c._streams.on_packets_acked(outcome.acked, target)
        for packet in outcome.lost:
            c._streams.on_packet_lost(packet, target)
        c._loss_stats[0] += len(outcome.lost)
        hooks = c._paths.hooks
        if hooks.tracks_packets:
            if outcome.acked:
                hooks.on_packets_acked(target, outcome.acked, now)
            if outcome.lost:
                hooks.on_packets_lost(target, outcome.lost, now)
        if outcome.acked:
            rate = c._ack_frequency.on_ack(target, now)
            if rate is not None:
                self._control.push(FrameRecord(rate))
        if self._crypto.one_rtt is not None:
            self._crypto.one_rtt.on_ack_received(largest, target.path_id, now)

    def _on_crypto(self, frame: CryptoFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        stream = self._crypto.receive_stream(epoch)
        if stream is None:
            return
        try:
            stream.on_frame(frame.offset, frame.data)
        except QuicError as exc:
            if exc.error_code == TransportErrorCode.FLOW_CONTROL_ERROR:
                # RFC 9000 §7.5: too much CRYPTO data buffered.
                raise QuicError(TransportErrorCode.CRYPTO_BUFFER_EXCEEDED, exc.reason,
                                frame_type=FrameType.CRYPTO) from None
            raise
        data = stream.read()
        if data:
            stream.window.should_send_update(now)  # slide the buffering bound
            c._handshake.tls_receive(epoch, data, now)

    def _on_new_token(self, frame: NewTokenFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        if not c._is_client:
            raise QuicError(PV, "NEW_TOKEN from a client", frame_type=FrameType.NEW_TOKEN)
        c._queue_event(NewTokenReceived(frame.token))

    def _on_handshake_done(self, frame: HandshakeDoneFrame, epoch: int, path: Path,
                           now: float) -> None:
        c = self._c
        if not c._is_client:
            raise QuicError(PV, "HANDSHAKE_DONE from a client", frame_type=FrameType.HANDSHAKE_DONE)
        c._handshake.confirm(now)

    def _peer_stream(self, stream_id: int, frame_type: int, receiving: bool) -> None:
        """Open peer streams implied by a frame (RFC 9000 §3.2) and check the stream ID."""
        c = self._c
        check_frame_direction(stream_id, c._is_client, for_receiving_part=receiving,
                              frame_type=frame_type)
        limits = c._streams.uni if is_unidirectional(stream_id) else c._streams.bidi
        for new_id in limits.on_peer_frame(stream_id, frame_type):
            c._streams.create(new_id)

    def _on_stream(self, frame: StreamFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        stream_id = frame.stream_id
        stream = c._streams.recv.get(stream_id)
        if stream is None:
            self._peer_stream(stream_id, FrameType.STREAM, True)
            stream = c._streams.recv.get(stream_id)
            if stream is None:
                return  # already finished and freed: a late duplicate
        stream.on_frame(frame.offset, frame.data, frame.fin)
        # Delivery (read, event, flow-control updates) waits until the application
        # asks for events or packets are built: a batch of datagrams from the socket
        # then costs one StreamDataReceived per stream instead of one per packet.
        # Anything that must see the data first delivers it (_queue_event, a
        # RESET_STREAM, stop_sending), so the order of events does not change.  At
        # DELIVERY_BATCH bytes it goes at once: the joined data is still in the CPU cache
        # (a batch of a megabyte is copied from memory, slower than the events it saves).
        if stream.readable >= DELIVERY_BATCH:
            c._streams.undelivered.pop(stream_id, None)
            self._deliver(stream, path, now)
        else:
            c._streams.undelivered[stream_id] = (stream, path, now)

    def deliver_pending(self) -> None:
        c = self._c
        pending, c._streams.undelivered = c._streams.undelivered, {}
        recv_streams = c._streams.recv
        for stream, path, now in pending.values():
            if recv_streams.get(stream.stream_id) is stream:
                self._deliver(stream, path, now)

    def _deliver(self, stream: RecvStream, path: Path, now: float) -> None:
        c = self._c
        stream_id = stream.stream_id
        data = stream.read() if stream.readable else b""
        end = stream.at_eof and stream_id not in c._streams.fin_reported
        if end:
            c._streams.fin_reported.add(stream_id)
        if data or end:
            c._queue_event(StreamDataReceived(stream_id, data, end))
        rtt = window_tuning_rtt(c._paths, path, c._mp)
        if stream.max_stream_data_update(now, rtt) is not None and (
                stream_id not in c._streams.pending_msd):
            c._streams.pending_msd.add(stream_id)
            self._control.push(MaxStreamDataRecord(stream_id))
        if c._streams.window.should_send_update(now, rtt) is not None and (
                not c._streams.max_data_pending):
            c._streams.max_data_pending = True
            self._control.push(MAX_DATA)
        c._streams.maybe_free(stream_id)

    def _on_reset_stream(self, frame: ResetStreamFrame, epoch: int, path: Path,
                         now: float) -> None:
        c = self._c
        stream_id = frame.stream_id
        if c._streams.undelivered:
            self.deliver_pending()  # data that arrived before the reset is delivered
        stream = c._streams.recv.get(stream_id)
        if stream is None:
            self._peer_stream(stream_id, FrameType.RESET_STREAM, True)
            stream = c._streams.recv.get(stream_id)
            if stream is None:
                return
        if stream.on_reset(frame.application_protocol_error_code, frame.final_size):
            c._queue_event(StreamReset(stream_id, frame.application_protocol_error_code))
            stream.mark_reset_read()
        rtt = window_tuning_rtt(c._paths, path, c._mp)
        if c._streams.window.should_send_update(now, rtt) is not None and (
                not c._streams.max_data_pending):
            c._streams.max_data_pending = True
            self._control.push(MAX_DATA)
        c._streams.maybe_free(stream_id)

    def _send_stream_for_frame(self, stream_id: int, frame_type: int) -> SendStream | None:
        c = self._c
        stream = c._streams.send.get(stream_id)
        if stream is None:
            self._peer_stream(stream_id, frame_type, False)
            stream = c._streams.send.get(stream_id)
        return stream

    def _on_stop_sending(self, frame: StopSendingFrame, epoch: int, path: Path,
                         now: float) -> None:
        c = self._c
        stream = self._send_stream_for_frame(frame.stream_id, FrameType.STOP_SENDING)
        if stream is None:
            return
        code = frame.application_protocol_error_code
        if stream.on_stop_sending(code):
            # RFC 9000 §3.5: answer with RESET_STREAM carrying the same code.
            c._streams.send_queue.pop(frame.stream_id, None)
            self._control.push(ResetStreamRecord(frame.stream_id))
            c._queue_event(StopSendingReceived(frame.stream_id, code))

    def _on_max_data(self, frame: MaxDataFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        if c._streams.credit.raise_limit(frame.maximum_data):
            for stream_id, stream in c._streams.send.items():
                if stream.has_data_to_send():
                    c._streams.send_queue[stream_id] = None

    def _on_max_stream_data(self, frame: MaxStreamDataFrame, epoch: int, path: Path,
                            now: float) -> None:
        c = self._c
        stream = self._send_stream_for_frame(frame.stream_id, FrameType.MAX_STREAM_DATA)
        if stream is not None and stream.on_max_stream_data(frame.maximum_stream_data) and (
                stream.has_data_to_send()):
            c._streams.send_queue[frame.stream_id] = None

    def _on_max_streams(self, frame: MaxStreamsFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        limits = c._streams.bidi if frame.bidirectional else c._streams.uni
        exhausted = limits.local_opened >= limits.peer_max
        if limits.on_max_streams(frame.maximum_streams) and exhausted:
            # The application may be waiting to open a stream: tell it (RFC 9000 §4.6).
            c._queue_event(StreamsAvailable(frame.bidirectional,
                                               limits.peer_max - limits.local_opened))

    def _on_data_blocked(self, frame: DataBlockedFrame, epoch: int, path: Path,
                         now: float) -> None:
        pass  # informational (RFC 9000 §19.12); our window policy does not depend on it

    def _on_stream_data_blocked(self, frame: StreamDataBlockedFrame, epoch: int, path: Path,
                                now: float) -> None:
        c = self._c
        if frame.stream_id not in c._streams.recv:
            self._peer_stream(frame.stream_id, FrameType.STREAM_DATA_BLOCKED, True)

    def _on_streams_blocked(self, frame: StreamsBlockedFrame, epoch: int, path: Path,
                            now: float) -> None:
        c = self._c
        limits = c._streams.bidi if frame.bidirectional else c._streams.uni
        limits.on_streams_blocked(frame.maximum_streams)
        update = limits.max_streams_update()
        if update is not None:
            self._control.push(MaxStreamsRecord(frame.bidirectional))

    def _on_new_connection_id(self, frame: NewConnectionIdFrame, epoch: int, path: Path,
                              now: float) -> None:
        c = self._c
        peer = path.peer_cid
        current_len = len(peer.cid) if peer is not None else len(c._initial_dcid)
        retired = c._cids.peer[0].on_new_connection_id(
            frame.sequence_number, frame.retire_prior_to, frame.connection_id,
            frame.stateless_reset_token, current_len)
        for old in retired:
            for p in c._paths:
                if p.peer_cid is old:
                    p.peer_cid = c._cids.peer[0].acquire()
                    if p.peer_cid is None:
                        raise QuicError(PV, "retire_prior_to left no connection ID to use",
                                        frame_type=FrameType.NEW_CONNECTION_ID)
        c._multipath.flush_retirements()

    def _on_retire_connection_id(self, frame: RetireConnectionIdFrame, epoch: int, path: Path,
                                 now: float) -> None:
        c = self._c
        entry = c._cids.local[0].on_retire(frame.sequence_number, c._rx_dcid)
        if entry is not None:
            c._queue_event(ConnectionIdRetired(entry.cid, entry.sequence_number))
            c._multipath.issue_cids()

    def _on_path_challenge(self, frame: PathChallengeFrame, epoch: int, path: Path,
                           now: float) -> None:
        c = self._c
        if len(path.responses) < 8:
            path.responses.append((frame.data, c._rx_network_path))

    def _on_path_response(self, frame: PathResponseFrame, epoch: int, path: Path,
                          now: float) -> None:
        c = self._c
        for p in c._paths:
            if frame.data in p.challenges:
                # RFC 9000 §8.2.3: a matching response validates the path it was sent on.
                # A migrated path (previous address kept) reports its validation too.
                was = p.validated and p.previous_network_path is None
                p.on_validated()
                if not was:
                    c._queue_event(PathValidated(p.path_id, p.network_path))
                return
        c._preferred.on_response(frame.data, now)  # RFC 9000 §9.6.1

    def _on_connection_close(self, frame: ConnectionCloseFrame, epoch: int, path: Path,
                             now: float) -> None:
        c = self._c
        reason = frame.reason.decode("utf-8", errors="replace")
        c._enter_draining(frame.error_code, frame.frame_type, reason, frame.is_application, now)

    def _on_immediate_ack(self, frame: ImmediateAckFrame, epoch: int, path: Path,
                          now: float) -> None:
        c = self._c
        if c._config.min_ack_delay is None:
            raise QuicError(PV, "IMMEDIATE_ACK without min_ack_delay negotiated",
                            frame_type=FrameType.IMMEDIATE_ACK)
        path.space.ack_tracker.on_immediate_ack(now)

    def _on_ack_frequency(self, frame: AckFrequencyFrame, epoch: int, path: Path,
                          now: float) -> None:
        c = self._c
        if c._config.min_ack_delay is None:
            raise QuicError(PV, "ACK_FREQUENCY without min_ack_delay negotiated",
                            frame_type=FrameType.ACK_FREQUENCY)
        for p in c._paths:
            p.space.ack_tracker.on_ack_frequency(
                frame.sequence_number, frame.ack_eliciting_threshold,
                frame.requested_max_ack_delay, frame.reordering_threshold)

    def _on_datagram(self, frame: DatagramFrame, epoch: int, path: Path, now: float) -> None:
        c = self._c
        limit = c._config.max_datagram_frame_size
        if not limit:
            raise QuicError(PV, "DATAGRAM frame not negotiated (RFC 9221 §3)",
                            frame_type=FrameType.DATAGRAM)
        if 1 + len(frame.data) > limit:
            raise QuicError(PV, "DATAGRAM frame larger than max_datagram_frame_size",
                            frame_type=FrameType.DATAGRAM)
        c._queue_event(DatagramReceived(frame.data))

    def _on_multipath(self, frame: Any, epoch: int, path: Path, now: float) -> None:
        c = self._c
        if not c._mp:
            # draft-ietf-quic-multipath §"Connection Lifecycle": without both endpoints
            # advertising initial_max_path_id its frames are a PROTOCOL_VIOLATION.
            raise QuicError(PV, f"{type(frame).__name__} without multipath negotiated",
                            frame_type=_CLASS_TYPE[type(frame)])
        from tquic.core.multipath_frames import MP_HANDLERS

        MP_HANDLERS[type(frame)](c._multipath, frame, epoch, path, now)

    def _on_nothing(self, frame: Any, epoch: int, path: Path, now: float) -> None:
        pass


_HANDLERS: dict[type, Handler] = {
    PaddingFrame: FrameHandlers._on_nothing,
    PingFrame: FrameHandlers._on_nothing,
    AckFrame: FrameHandlers._on_ack,
    ResetStreamFrame: FrameHandlers._on_reset_stream,
    StopSendingFrame: FrameHandlers._on_stop_sending,
    CryptoFrame: FrameHandlers._on_crypto,
    NewTokenFrame: FrameHandlers._on_new_token,
    StreamFrame: FrameHandlers._on_stream,
    MaxDataFrame: FrameHandlers._on_max_data,
    MaxStreamDataFrame: FrameHandlers._on_max_stream_data,
    MaxStreamsFrame: FrameHandlers._on_max_streams,
    DataBlockedFrame: FrameHandlers._on_data_blocked,
    StreamDataBlockedFrame: FrameHandlers._on_stream_data_blocked,
    StreamsBlockedFrame: FrameHandlers._on_streams_blocked,
    NewConnectionIdFrame: FrameHandlers._on_new_connection_id,
    RetireConnectionIdFrame: FrameHandlers._on_retire_connection_id,
    PathChallengeFrame: FrameHandlers._on_path_challenge,
    PathResponseFrame: FrameHandlers._on_path_response,
    ConnectionCloseFrame: FrameHandlers._on_connection_close,
    HandshakeDoneFrame: FrameHandlers._on_handshake_done,
    ImmediateAckFrame: FrameHandlers._on_immediate_ack,
    AckFrequencyFrame: FrameHandlers._on_ack_frequency,
    DatagramFrame: FrameHandlers._on_datagram,
    **{cls: FrameHandlers._on_multipath for cls in _MULTIPATH},
}


def window_tuning_rtt(paths: Iterable[Path], path: Path, multipath: bool) -> float | None:
    """The RTT that paces receive-window auto-tuning (RFC 9000 §4.2) for data that
    arrived on ``path``, or None before an RTT sample.

    With several paths, in-order delivery -- and so the credit we can grant back --
    waits for the slowest path in use: data sent at the same time on a 20 ms and a
    200 ms path is consumed only when the slow copy lands, and a packet lost on the
    slow path leaves a hole until its loss is detected and the data resent, at the
    latest a PTO later (RFC 9002 §6.2.1: smoothed_rtt + 4 * rttvar).  The window
    must cover the aggregate rate over that span, or the sender is flow-control
    blocked while every congestion window still has room (the windows are
    connection-level, shared by every path: draft-ietf-quic-multipath
    §"Introduction").  One path: that path's smoothed RTT."""
    if multipath:
        best: float | None = None
        for p in paths:
            r = p.recovery.rtt
            if p.usable and r.has_sample:
                span = r.smoothed_rtt + 4.0 * r.rttvar
                if best is None or span > best:
                    best = span
        if best is not None:
            return best
    rtt = path.recovery.rtt
    return rtt.smoothed_rtt if rtt.has_sample else None

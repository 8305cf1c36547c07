"""Shared state of QuicConnection and the pieces it is split into.

QuicConnection is assembled from mixins along named seams (handshake,
packet building, frame handling); this base declares the attributes they
share so each file type-checks on its own.  Nothing here has behaviour
beyond small helpers.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from tquic.core.events import Event
from tquic.core.records import Record
from tquic.wire.epochs import Epoch as Epoch  # encryption levels (RFC 9001 §4)

if TYPE_CHECKING:
    from tquic.core.ack_frequency import AckFrequency
    from tquic.core.cids import LocalCids, PeerCids
    from tquic.core.config import QuicConfiguration
    from tquic.core.datagram_queue import DatagramQueue
    from tquic.core.frame_handlers import FrameHandlers
    from tquic.core.handshake import Handshake
    from tquic.core.key_update import OneRttKeys
    from tquic.core.migration import Migration
    from tquic.core.multipath import Multipath
    from tquic.core.packet_builder import PacketBuilder
    from tquic.core.preferred_address import PreferredAddressHandler
    from tquic.core.qlog_events import EngineQlog
    from tquic.core.recv_stream import RecvStream
    from tquic.core.send_stream import SendStream
    from tquic.core.streams_api import Streams
    from tquic.core.timers import Timers
    from tquic.core.tokens import TokenManager
    from tquic.crypto.protection import PacketProtection
    from tquic.paths.manager import PathManager
    from tquic.paths.network_path import NetworkPath
    from tquic.paths.path import PacketSpace, Path
    from tquic.paths.recovery import PathRecovery
    from tquic.wire.errors import QuicError
    from tquic.wire.frames import ConnectionCloseFrame
    from tquic.wire.params import TransportParameters


class ConnState(IntEnum):
    HANDSHAKE = 0
    CONNECTED = 1
    CLOSING = 2  # RFC 9000 §10.2.1
    DRAINING = 3  # RFC 9000 §10.2.2
    TERMINATED = 4


# Retransmission records (what SentPacket.frames holds): typed values in core/records.py.


class ConnectionBase:
    """Attribute declarations shared by the connection mixins."""

    _config: QuicConfiguration
    _is_client: bool
    _version: int
    _state: ConnState
    _events: deque[Event]
    _paths: PathManager
    _spaces: dict[int, PacketSpace]  # Initial and Handshake, by Epoch
    _send_keys: dict[int, PacketProtection]  # Initial, 0-RTT, Handshake
    _recv_keys: dict[int, PacketProtection]
    _one_rtt: OneRttKeys | None
    _one_rtt_send_secret: Any
    _one_rtt_recv_secret: Any
    _crypto_send: dict[int, SendStream]
    _crypto_recv: dict[int, RecvStream]
    _tls: Any
    _local_cids: LocalCids
    _peer_cids: PeerCids
    _original_dcid: bytes
    _initial_dcid: bytes  # the DCID the client's Initial keys are derived from
    _retry_scid: bytes | None
    _peer_initial_scid: bytes | None
    _received_retry: bool
    _token: bytes
    _peer_params: TransportParameters | None
    _remembered_params: TransportParameters | None
    _local_params: TransportParameters
    _handshake_complete: bool
    _handshake_confirmed: bool
    _handshake_done_pending: bool
    _early_data_accepted: bool
    _zero_rtt_sent: bool
    _control: list[Record]  # pending control records, sent in 1-RTT
    _datagrams: DatagramQueue
    datagrams_dropped_too_big: int  # queued, then too big for a smaller path's MTU
    _close_frame: ConnectionCloseFrame | None
    _close_pending: bool
    _close_deadline: float | None
    _activity_since_send: bool
    _token_manager: TokenManager | None
    _peer_address_validated: bool
    _address_validated_by_token: bool
    _discarded_epochs: set[int]
    _undecryptable: list[tuple[bytes, NetworkPath, float, int]]
    _received_any: bool
    _ecn_ce_seen: int
    _rx_ecn: int  # ECN codepoint of the datagram being processed (RFC 9000 §13.4.1)
    _loss_stats: list[int]
    _mp: bool  # draft-ietf-quic-multipath negotiated (core/multipath.py)
    _qlog: EngineQlog | None  # core/qlog_events.py; None: no logger, no cost
    _ack_frequency: AckFrequency  # core/ack_frequency.py (an owned component)
    _builder: PacketBuilder  # core/packet_builder.py
    _preferred: PreferredAddressHandler  # core/preferred_address.py
    _migration: Migration  # core/migration.py
    _timers: Timers  # core/timers.py
    _streams: Streams  # core/streams_api.py
    _multipath: Multipath  # core/multipath.py
    _handshake: Handshake  # core/handshake.py
    _frame_handlers: FrameHandlers  # core/frame_handlers.py

    # -- cross-mixin operations (implemented by the mixins / QuicConnection) ---------

    def _queue_event(self, event: Event) -> None:
        if self._streams.undelivered:
            self._frame_handlers.deliver_pending()  # stream data received before this event comes first
        self._events.append(event)
        if self._qlog is not None:
            self._qlog.on_event(event)

    def max_datagram_payload(self) -> int:
        raise NotImplementedError

    def _discard_epoch(self, epoch: int) -> None:
        raise NotImplementedError

    def _enter_draining(self, error_code: int, frame_type: int | None, reason: str,
                        application: bool, now: float) -> None:
        raise NotImplementedError

    def _on_zero_rtt_rejected(self) -> None:
        raise NotImplementedError

    def _on_server_handshake_done(self, now: float) -> None:
        raise NotImplementedError

    def _apply_peer_params(self, params: TransportParameters, now: float) -> None:
        raise NotImplementedError

    def _internal_error(self, exc: BaseException, now: float) -> None:
        raise NotImplementedError

    def _close_on_error(self, exc: QuicError, now: float) -> None:
        raise NotImplementedError

    def _reset_recovery(self, path: Path) -> None:
        raise NotImplementedError

    def _make_recovery(self, path_id: int) -> PathRecovery:
        raise NotImplementedError

    # core/preferred_address.py

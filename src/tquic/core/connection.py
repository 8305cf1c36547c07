"""QuicConnection: the sans-I/O QUIC connection (DESIGN.md "The sans-I/O contract").

Dispatch and orchestration only; the work is split along seams:

- core/handshake.py      TLS <-> CRYPTO, when keys come and go, transport parameters
- core/crypto_levels.py  CryptoLevels: keys, CRYPTO streams, Initial/Handshake spaces per
                         epoch, discarded epochs, the TLS session
- core/control_queue.py  ControlQueue: control frames owed, as typed records
- core/send_loop.py      SendLoop: which datagram goes now on which path (one loop for
                         one path and several; stream trains; off-path responses,
                         PMTU probes)
- core/packet_builder.py PacketBuilder: filling, coalescing and protecting packets
                         (ACK/PATH_ACK writer: core/ack_writer.py)
- core/frame_handlers.py one handler per frame type
- core/streams_api.py    application stream calls, retransmission records
- core/timers.py         next_timeout / handle_timeout, idle timer, the connection's PTO
- core/closing.py        close(), errors of ours, draining (RFC 9000 §10.2)
- core/key_update.py, core/cids.py, core/tokens.py, core/pmtud.py
- paths/                 Path (pn space, recovery, validation), PathManager, schedulers

Every entry point takes ``now``; nothing reads a clock or touches a socket.
No exception escapes ``receive_datagram``: a QuicError closes the connection
with its code, anything else closes with INTERNAL_ERROR and is logged.
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING, Any

from tquic.core import closing
from tquic.core.ack_frequency import AckFrequency
from tquic.core.cids import CidTable, LocalCids, PeerCids
from tquic.core.config import QuicConfiguration
from tquic.core.conn_base import ConnState
from tquic.core.control_queue import ControlQueue
from tquic.core.crypto_levels import CryptoLevels, CryptoState
from tquic.core.datagram_queue import DatagramQueue, datagram_payload_limit
from tquic.core.empty_queue import EMPTY, writable
from tquic.core.events import ConnectionIdIssued, Event
from tquic.core.frame_handlers import FrameHandlers
from tquic.core.handshake import Handshake
from tquic.core.key_update import KeyUpdateNotAllowed
from tquic.core.migration import Migration
from tquic.core.multipath import Multipath
from tquic.core.owner_ref import owner_proxy
from tquic.core.packet_builder import PacketBuilder
from tquic.core.path_setup import PathSetup
from tquic.core.preferred_address import PreferredAddressHandler
from tquic.core.qlog_events import EngineQlog
from tquic.core.receiver import Receiver
from tquic.core.send_loop import SendLoop
from tquic.core.send_stream import SendProgress
from tquic.core.streams_api import Streams
from tquic.core.timers import Timers
from tquic.core.tokens import shared_token_manager
from tquic.crypto.keys import CipherSuite
from tquic.paths.manager import PathManager, PathPolicy, PathStats
from tquic.paths.network_path import Address, NetworkPath
from tquic.paths.path import MIN_PATH_MTU, Path
from tquic.wire.errors import PathAbandonCode, QuicError
from tquic.wire.frames import ConnectionCloseFrame
from tquic.wire.params import TransportParameters, decode_transport_parameters

if TYPE_CHECKING:
    from tquic.core.tokens import TokenManager

class DatagramError(ValueError):
    """send_datagram refused: DATAGRAM not negotiated, or the payload cannot fit."""


class QuicConnection:
    """One QUIC connection, client or server: the orchestrator of its components."""

    _config: QuicConfiguration
    _is_client: bool
    _version: int
    _state: ConnState
    _events: deque[Event]
    _paths: PathManager
    _crypto: CryptoLevels  # keys, CRYPTO streams, spaces per epoch; TLS (core/crypto_levels.py)
    _cids: CidTable  # every path's connection IDs, ours and the peer's (core/cids.py)
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
    _early_data_accepted: bool
    _zero_rtt_sent: bool
    _control: ControlQueue  # control records to send in 1-RTT (core/control_queue.py)
    _datagrams: DatagramQueue
    datagrams_dropped_too_big: int  # queued, then too big for a smaller path's MTU
    _close_frame: ConnectionCloseFrame | None
    _close_pending: bool
    _close_deadline: float | None
    _activity_since_send: bool
    _token_manager: TokenManager | None
    _peer_address_validated: bool
    _address_validated_by_token: bool
    _received_any: bool
    _ecn_ce_seen: int
    _rx_ecn: int  # ECN codepoint of the datagram being processed (RFC 9000 §13.4.1)
    _loss_stats: list[int]
    _mp: bool  # draft-ietf-quic-multipath negotiated (core/multipath.py)
    _qlog: EngineQlog | None  # core/qlog_events.py; None: no logger, no cost
    # Every attribute above and the components (docs/architecture.md) are slots: no
    # 1.6 KB instance dict per connection; "__dict__" still takes others (tests' patches).
    __slots__ = (*__annotations__, "_ack_frequency", "_builder", "_close_responses",
                 "_frame_handlers", "_handshake", "_migration", "_multipath", "_path_setup",
                 "_peer_max_udp", "_preferred", "_receiver", "_rx_dcid", "_rx_network_path",
                 "_rx_path", "_send_loop", "_streams", "_timers", "__dict__", "__weakref__")

    def __init__(
        self,
        configuration: QuicConfiguration,
        *,
        is_client: bool | None = None,
        original_destination_connection_id: bytes | None = None,
        retry_source_connection_id: bytes | None = None,
        address_validated: bool = False,
        scheduler: str | None = None,
        tls_factory: Any = None,
    ) -> None:
        c = configuration
        self._config = c
        self._is_client = c.is_client if is_client is None else is_client
        self._version = c.versions[0]
        self._state = ConnState.HANDSHAKE
        self._events: deque[Event] = EMPTY  # lazily created: see core/empty_queue.py
        self._qlog = EngineQlog.create(c.quic_logger, self._is_client)
        self._crypto = CryptoLevels(self._qlog)
        self._control = ControlQueue()
        # The components reach back to their connection through a weak proxy: no
        # reference cycle, so a connection that ends is freed at once by reference
        # counting, not by the cyclic collector (core/owner_ref.py, issue 19).
        me = owner_proxy(self)
        self._preferred = PreferredAddressHandler(me)
        self._migration = Migration(me)
        self._timers = Timers(me, self._crypto)
        self._streams = Streams(me)
        self._paths = PathManager(scheduler or c.scheduler, PathPolicy.from_config(c))
        self._mp = False  # draft-ietf-quic-multipath negotiated (core/multipath.py)
        self._multipath = Multipath(me)
        self._handshake = Handshake(me, self._crypto, tls_factory)
        self._frame_handlers = FrameHandlers(me, self._crypto, self._control)
        self._receiver = Receiver(me)
        self._path_setup = PathSetup(me)
        self._rx_path: Path | None = None
        self._cids = CidTable(LocalCids(c.connection_id_length, c.stateless_reset_key,
                                        generator=c.connection_id_generator),
                              PeerCids(c.active_connection_id_limit))
        self._original_dcid = original_destination_connection_id or b""
        self._initial_dcid = b""
        self._retry_scid = retry_source_connection_id
        self._peer_initial_scid = None
        self._received_retry = False
        self._token = c.token if self._is_client else b""
        self._peer_params = None
        self._remembered_params = None
        self._handshake_complete = False
        self._handshake_confirmed = False
        self._early_data_accepted = False
        self._zero_rtt_sent = False
        self._datagrams = DatagramQueue(c.datagram_queue_size)
        self.datagrams_dropped_too_big = 0
        self._close_frame = None
        self._close_pending = False
        self._close_deadline = None
        self._close_responses = 0
        self._activity_since_send = True
        self._token_manager = None if self._is_client else shared_token_manager(c.token_key)
        self._ack_frequency = AckFrequency()
        self._peer_address_validated = self._is_client
        # Server: the endpoint validated the client's address before this connection
        # existed, with a Retry token (RFC 9000 §8.1.2) or a NEW_TOKEN token (§8.1.3),
        # so path 0 starts validated and the 3x amplification limit does not apply.
        self._address_validated_by_token = address_validated and not self._is_client
        self._received_any = False
        self._ecn_ce_seen = 0
        self._rx_ecn = 0
        self._loss_stats = [0]
        self._peer_max_udp = 65527
        self._rx_dcid = b""
        self._rx_network_path = NetworkPath(("", 0), ("", 0))
        self._builder = PacketBuilder(me)
        self._send_loop = SendLoop(me, self._builder)
        self._local_params = TransportParameters()
        remembered = getattr(c.session_ticket, "peer_transport_parameters", None)
        if self._is_client and remembered is not None and c.enable_early_data:
            try:
                self._remembered_params = decode_transport_parameters(bytes(remembered))
            except QuicError:
                self._remembered_params = None
            else:
                self._handshake.apply_remembered(self._remembered_params)

    # -- public state --------------------------------------------------------------------

    @property
    def is_client(self) -> bool:
        return self._is_client

    @property
    def configuration(self) -> QuicConfiguration:
        return self._config

    @property
    def received_retry(self) -> bool:
        """Client: a Retry was received and acted on (RFC 9000 §8.1.2)."""
        return self._received_retry

    @property
    def ack_frequency_active(self) -> bool:
        """ACK_FREQUENCY frames are being sent (draft-ietf-quic-ack-frequency)."""
        return self._ack_frequency.active

    @property
    def qlog_enabled(self) -> bool:
        """A qlog logger is attached (without one the engine keeps no qlog state)."""
        return self._qlog is not None

    @property
    def version(self) -> int:
        return self._version

    @property
    def handshake_confirmed(self) -> bool:
        """The handshake is confirmed (RFC 9001 §4.1.2): HANDSHAKE_DONE received (client)
        or the handshake complete (server)."""
        return self._handshake_confirmed

    @property
    def handshake_complete(self) -> bool:
        return self._handshake_complete

    @property
    def received_any_packet(self) -> bool:
        """True once a packet decrypted (a server drops a connection whose first
        datagram holds none: nothing is kept for undecryptable Initials)."""
        return self._received_any

    @property
    def state(self) -> ConnState:
        """Where the connection is in its life: HANDSHAKE, CONNECTED, CLOSING, DRAINING
        (RFC 9000 §10.2) or TERMINATED."""
        return self._state

    @property
    def zero_rtt_sent(self) -> bool:
        """Client: 0-RTT packets were sent (RFC 9001 §4.6)."""
        return self._zero_rtt_sent

    @property
    def local_transport_parameters(self) -> TransportParameters:
        """The transport parameters we send (RFC 9000 §7.4)."""
        return self._local_params

    @property
    def is_closed(self) -> bool:
        """True once closing/draining is over (or idle timeout / stateless reset)."""
        return self._state == ConnState.TERMINATED

    @property
    def host_cids(self) -> list[bytes]:
        """Connection IDs that route to this connection (for the endpoint's demux)."""
        return [entry.cid for entry in self._cids.local[0].active] + self._multipath.host_cids

    @property
    def original_destination_connection_id(self) -> bytes:
        return self._original_dcid

    @property
    def peer_transport_parameters(self) -> TransportParameters | None:
        """The peer's transport parameters (RFC 9000 §7.4), None before they arrive."""
        return self._peer_params

    @property
    def probing_preferred_address(self) -> bool:
        """Client: the server's preferred address is being validated (RFC 9000 §9.6.1)."""
        return self._preferred.probe is not None

    @property
    def paths(self) -> PathManager:
        return self._paths

    @property
    def key_phase(self) -> int:
        keys = self._crypto.one_rtt
        return keys.send_phase if keys is not None else 0

    @property
    def crypto_state(self) -> CryptoState:
        """A snapshot of the keys, CRYPTO streams and spaces per epoch (core/crypto_levels.py)."""
        return self._crypto.state()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]:
        """Datagrams to put on the wire now, each with the network path to send it on
        (core/send_loop.py)."""
        return self._send_loop.datagrams_to_send(now)

    def migrate(self, network_path: NetworkPath, now: float, path_id: int | None = None) -> None:
        """Client: move a path (default: the primary one) to a new local address (RFC 9000
        §9.2), with a new DCID of the same path ID and path validation (core/migration.py)."""
        self._migration.migrate(network_path, now, path_id)

    # -- streams (core/streams_api.py) ---------------------------------------------------

    def open_stream(self, bidirectional: bool = True) -> int:
        """A new locally initiated stream ID; StreamUsageError when the peer's limit is
        reached (a STREAMS_BLOCKED frame is then sent, RFC 9000 §4.6)."""
        return self._streams.open_stream(bidirectional)

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue ``data`` on a stream (opening a peer's stream part is not allowed)."""
        self._streams.send_stream_data(stream_id, data, end_stream)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Abandon sending on a stream (RESET_STREAM, RFC 9000 §3.1)."""
        self._streams.reset_stream(stream_id, error_code)

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        """Ask the peer to stop sending on a stream (STOP_SENDING, RFC 9000 §3.5)."""
        self._streams.stop_sending(stream_id, error_code)

    def stream_writable(self, stream_id: int) -> int:
        """Bytes the application may queue on a stream before its buffer is full."""
        return self._streams.stream_writable(stream_id)

    def unacknowledged_stream_bytes(self) -> int:
        """Stream bytes written but not yet acknowledged by the peer (reset streams
        excluded): what a graceful close should let arrive first."""
        return self._streams.unacknowledged_stream_bytes()

    def send_progress(self, stream_id: int) -> SendProgress | None:
        """Where a stream's sending part is (written, sent, acknowledged, lost); None
        without one or once it is finished and freed."""
        stream = self._streams.send.get(stream_id)
        return None if stream is None else stream.progress()

    @property
    def receive_window(self) -> int:
        """The connection-level window we grant now (RFC 9000 §4.1; grows with auto-tuning)."""
        return self._streams.window.window

    def peer_max_streams(self, bidirectional: bool = True) -> int:
        """How many streams of that type the peer lets us open in all (MAX_STREAMS, §4.6)."""
        return (self._streams.bidi if bidirectional else self._streams.uni).peer_max

    # -- TLS (core/handshake.py) ---------------------------------------------------------

    @property
    def cipher_suite(self) -> CipherSuite | None:
        """The TLS cipher suite negotiated (RFC 9001 §5.3), None before the ServerHello."""
        return self._handshake.cipher_suite

    @property
    def peer_certificate(self) -> Any:
        """The peer's verified end-entity certificate (``cryptography.x509.Certificate``;
        a server sees one only with ``require_client_cert``), None before or without."""
        return self._handshake.peer_certificate

    # -- paths (core/multipath.py) -----------------------------------------------------------

    @property
    def multipath_enabled(self) -> bool:
        """Both endpoints advertised initial_max_path_id (multipath is in use)."""
        return self._mp

    @property
    def local_max_path_id(self) -> int:
        """The largest path ID we allow (initial_max_path_id, raised by MAX_PATH_ID)."""
        return self._multipath.local_max

    def local_cids(self) -> dict[int, dict[int, bytes]]:
        """The connection IDs we issued and still hold, by path ID then sequence number."""
        return {path_id: {e.sequence_number: e.cid for e in cids.active}
                for path_id, cids in sorted(self._cids.local.items())}

    def peer_cids(self) -> dict[int, list[bytes]]:
        """The connection IDs the peer issued, by path ID then sequence number (RFC 9000
        §5.1.1; PATH_NEW_CONNECTION_ID under multipath)."""
        return {path_id: cids.cids() for path_id, cids in sorted(self._cids.peer.items())}

    @property
    def can_open_path(self) -> bool:
        """Client: ``add_path`` would succeed now (multipath negotiated, handshake
        confirmed, an unused path ID with connection IDs from both sides)."""
        return self._multipath.can_open_path

    def add_path(self, local: NetworkPath | Address, remote_addr: Address | None = None,
                 now: float = 0.0, *, backup: bool = False,
                 congestion_control: str | None = None) -> int:
        """Client: open a new path from ``local`` (a local address, or a whole NetworkPath)
        to ``remote_addr`` (default: path 0's peer address); returns its path ID
        (core/multipath.py ``Multipath.add_path``: the rules and the errors)."""
        return self._multipath.add_path(local, remote_addr, now, backup=backup,
                                        congestion_control=congestion_control)

    def set_path_status(self, path_id: int, backup: bool, now: float = 0.0) -> None:
        """Signal PATH_STATUS_BACKUP / PATH_STATUS_AVAILABLE for a path; we follow our own
        signal too (a backup path carries data only when no available path is left)."""
        self._multipath.set_path_status(path_id, backup, now)

    def abandon_path(self, path_id: int, error_code: int = PathAbandonCode.APPLICATION_ABANDON_PATH,
                     now: float = 0.0) -> None:
        """Close one path with PATH_ABANDON; its unacknowledged data is resent on the other
        paths.  Abandoning the last open path closes the connection."""
        self._multipath.abandon_path(path_id, error_code, now)

    def path_stats(self, now: float = 0.0) -> list[PathStats]:
        """A frozen snapshot per path (RTT, window, counters, goodput)."""
        return self._paths.stats(now)

    # -- timers (core/timers.py) -----------------------------------------------------------

    def next_timeout(self) -> float | None:
        """When ``handle_timeout`` must be called next (None: no timer)."""
        return self._timers.next_timeout()

    def handle_timeout(self, now: float) -> None:
        """Run the timers that are due at ``now`` (core/timers.py).  Never raises."""
        self._timers.handle_timeout(now)

    @property
    def pto(self) -> float:
        """The connection's probe timeout in seconds (RFC 9002 §6.2.1; with multipath the
        largest of its paths')."""
        return self._timers.pto()

    @property
    def idle_timeout(self) -> float:
        """The idle timeout in effect, 0 for none: the smaller of both sides' (RFC 9000 §10.1)."""
        return self._timers.idle_timeout

    @property
    def idle_deadline(self) -> float | None:
        """When the connection times out if nothing arrives (RFC 9000 §10.1)."""
        return self._timers.idle_deadline()

    def _queue_event(self, event: Event) -> None:
        if self._streams.undelivered:
            # Stream data received before this event comes first.
            self._frame_handlers.deliver_pending()
        events = self._events = writable(self._events)
        events.append(event)
        if self._qlog is not None:
            self._qlog.on_event(event)

    def next_event(self) -> Event | None:
        if self._streams.undelivered:
            self._frame_handlers.deliver_pending()
        events = self._events
        if not events:
            return None
        event = events.popleft()
        if not events:
            self._events = EMPTY  # an idle connection holds no queue
        return event

    def release_idle_state(self) -> None:
        """The connection has gone quiet: drop the OpenSSL contexts of its keys (~7 KB
        of an idle connection's memory, issue 19); the next packet rebuilds them."""
        self._crypto.release()

    # -- setup -------------------------------------------------------------------------

    def _start(self, network_path: NetworkPath, now: float) -> None:
        path = self._path_setup.new_path(0, network_path,
                              validated=self._is_client or self._address_validated_by_token)
        path.opened_at = now  # its goodput's clock (PathStats): a real clock is not 0 here
        self._paths.add(path)
        entry = self._cids.local[0].initial
        if entry is not None:
            self._queue_event(ConnectionIdIssued(entry.cid, 0, entry.reset_token))
        self._timers.restart_idle_timer(now)

    def connect(self, network_path: NetworkPath, now: float) -> None:
        """Client: start the handshake towards ``network_path``."""
        if not self._is_client or self._crypto.tls is not None:
            raise RuntimeError("connect() is for a client, once")
        self._start(network_path, now)
        dcid = os.urandom(max(8, self._config.connection_id_length))
        self._original_dcid = dcid
        self._handshake.setup_initial_keys(dcid)
        self._paths.primary.peer_cid = None
        self._start_tls(now)

    def _start_tls(self, now: float) -> None:
        self._local_params = self._handshake.build_local_params()
        tls = self._crypto.tls = self._handshake.create_tls()
        if self._is_client:
            tls.start()
            self._handshake.drain_tls(now)

    # -- receiving -----------------------------------------------------------------------

    def ecn_codepoint(self, network_path: NetworkPath) -> int:
        """The ECN codepoint (IP header bits: 0 Not-ECT, 1 ECT(1), 2 ECT(0)) to set on the
        datagrams the last ``datagrams_to_send`` returned for ``network_path``.

        It is the sending path's ECN validation state (RFC 9000 §13.4.2,
        tquic.paths.ecn), which changes only while ACKs and timeouts are processed,
        so one value holds for a whole batch; datagrams to an address that is not
        a path's (a PATH_RESPONSE to a probing peer) go unmarked.
        """
        return self._paths.ecn_codepoint(network_path)

    def receive_datagram(self, data: bytes, network_path: NetworkPath, now: float,
                         ecn: int = 0) -> None:
        """Process one UDP datagram.  Never raises.

        ``ecn`` is the ECN field of its IP header (0 Not-ECT, 1 ECT(1), 2 ECT(0),
        3 CE), counted per packet-number space for ACK_ECN (RFC 9000 §13.4.1).
        """
        self._rx_ecn = ecn & 3
        try:
            self._receiver.receive(data, network_path, now)
        except QuicError as exc:
            self._close_on_error(exc, now)
        except Exception as exc:
            self._internal_error(exc, now)

    # -- application calls ---------------------------------------------------------------------

    def max_datagram_payload(self) -> int:
        """The largest payload ``send_datagram`` admits now; 0 without DATAGRAM support.

        A DATAGRAM frame never spans packets (RFC 9221 §5) and the scheduler may put it
        on any validated path, so it must fit one 1-RTT packet on the smallest MTU among
        them (none validated yet: 1200).  A path counts 1200 bytes (RFC 9000 §14) until
        DPLPMTUD validates more (RFC 8899 §5, core/pmtud.py).  The header is counted at
        its longest (20-byte CID, 4-byte packet number) so the figure does not move with
        CID changes."""
        frame_limit = self._peer_params.max_datagram_frame_size if self._peer_params else 0
        if not frame_limit:
            return 0
        sizes = [p.max_datagram_size for p in self._paths if p.validated]
        return datagram_payload_limit(frame_limit, min(sizes) if sizes else MIN_PATH_MTU,
                                      self._peer_max_udp)

    @property
    def datagrams_dropped(self) -> int:
        """DATAGRAMs queued by ``send_datagram`` and never sent: pushed out of the full
        queue by newer ones, or too big for the paths when their turn came."""
        return self._datagrams.dropped + self.datagrams_dropped_too_big

    def send_datagram(self, data: bytes, path_id: int | None = None) -> None:
        """Queue an unreliable DATAGRAM (RFC 9221); the queue is bounded (oldest dropped).

        A queued datagram that no longer fits (a path with a smaller MTU joined) still
        goes in a packet that has room for it; one that reaches a packet it cannot fit
        is dropped and counted in ``datagrams_dropped_too_big`` (it would block the
        queue otherwise).

        ``path_id``: the path it should leave on, a preference and not a guarantee: if
        that path cannot send (gone, not validated, a backup not in use, window full) it
        goes on another (core/datagram_queue.py).  Ignored without multipath."""
        limit = self.max_datagram_payload()
        if not limit:
            raise DatagramError("the peer does not accept DATAGRAM frames")
        if len(data) > limit:
            raise DatagramError(f"datagram of {len(data)} bytes does not fit "
                                f"(at most {limit} on the current paths)")
        self._datagrams.push(bytes(data), path_id)

    def request_key_update(self, now: float | None = None) -> None:
        """Start a 1-RTT key update (RFC 9001 §6.1).  With multipath and ``now`` given,
        not before 3 x the largest PTO after the previous update was acknowledged
        (draft-ietf-quic-multipath §"Key Phase Update Process")."""
        keys = self._crypto.one_rtt
        if not self._handshake_confirmed or keys is None:
            raise KeyUpdateNotAllowed("the handshake is not confirmed")
        if (self._mp and now is not None and keys.updates and keys.phase_acked_at is not None
                and now < keys.phase_acked_at + 3 * self._timers.pto()):
            raise KeyUpdateNotAllowed("multipath: wait 3 x the largest PTO after the "
                                      "previous key update was acknowledged")
        keys.initiate()
        if self._qlog is not None:
            self._qlog.local_key_update(keys.updates)

    def close(self, error_code: int = 0, reason: str = "", application: bool = True) -> None:
        """Close the connection (RFC 9000 §10.2): CONNECTION_CLOSE, then the closing period."""
        closing.close(self, error_code, reason, application)

    def _close_on_error(self, exc: QuicError, now: float) -> None:
        closing.close_on_error(self, exc, now)

    def _internal_error(self, exc: BaseException, now: float) -> None:
        closing.internal_error(self, exc, now)

    def _enter_draining(self, error_code: int, frame_type: int | None, reason: str,
                        application: bool, now: float) -> None:
        closing.enter_draining(self, error_code, frame_type, reason, application, now)

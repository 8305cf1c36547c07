"""Handshake of the connection: TLS <-> CRYPTO frames, keys per epoch,
transport parameters, key discard (RFC 9001 §4, §4.9; RFC 9000 §7).

The TLS engine (tquic.crypto.tls) is driven with CRYPTO bytes in order per
epoch and hands back handshake bytes and traffic secrets; Handshake moves
them between TLS, the CRYPTO streams and packet protection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tquic.core.conn_base import ConnState, Epoch
from tquic.core.events import HandshakeCompleted, SessionTicketReceived
from tquic.core.local_params import encode_local_parameters
from tquic.core.pmtud import Pmtud
from tquic.core.records import FrameRecord
from tquic.core.version_negotiation import (
    MAX_PEEK,
    client_check_server_info,
    client_hello_length,
    client_hello_version_information,
    is_compatible,
    server_choose_version,
)
from tquic.crypto.keys import CipherSuite
from tquic.crypto.protection import PacketProtection
from tquic.wire.epochs import SpaceId, space_of
from tquic.wire.errors import QuicError, TransportErrorCode
from tquic.wire.frames import NewTokenFrame
from tquic.wire.packet import Header, PacketType
from tquic.wire.params import (
    TransportParameters,
    VersionInformation,
    check_peer_parameters,
    decode_transport_parameters,
)

if TYPE_CHECKING:
    from tquic.core.config import QuicConfiguration
    from tquic.core.connection import QuicConnection
    from tquic.core.crypto_levels import CryptoLevels

FRAME_CRYPTO = 0x06
_EPOCHS = tuple(sorted(Epoch))  # by value: _EPOCHS[int(epoch)] is the Epoch
TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR


class Handshake:
    """TLS driving and key management: the TLS session behind CRYPTO frames, keys per
    epoch, transport parameters, version negotiation.  Owns the version-negotiation
    state and the TLS factory; the keys, CRYPTO streams and the TLS session it drives
    are kept by the connection's ``CryptoLevels`` (core/crypto_levels.py), which the
    packet builder and the receive path read per packet."""

    __slots__ = ("_c", "_crypto", "acted_on_vn", "ch_peek", "orig_initial_recv",
                 "original_version", "tickets_seen", "tls_factory")

    def __init__(self, conn: QuicConnection, crypto: CryptoLevels, tls_factory: Any) -> None:
        self._c = conn
        self._crypto = crypto
        self.tls_factory = tls_factory
        self.tickets_seen = 0
        # Server: ClientHello bytes held back from TLS until the version is chosen (None
        # once chosen); the version of the client's first flight; the Initial receive keys
        # of that version, kept after switching (RFC 9369 §4: the client goes on sending
        # original-version Initials until it sees ours).  Client: whether a Version
        # Negotiation packet was acted upon (RFC 9368 §4 downgrade check).
        self.ch_peek: bytes | None = b""
        self.original_version = 0
        self.orig_initial_recv: PacketProtection | None = None
        self.acted_on_vn = False

    def setup_initial_keys(self, dcid: bytes) -> None:
        """Initial keys from the client's first DCID (RFC 9001 §5.2; v2: RFC 9369 §3.3.1)."""
        c = self._c
        self._crypto.install_initial(c._version, dcid, c._is_client)
        c._initial_dcid = dcid

    def build_local_params(self) -> TransportParameters:
        conn = self._c
        c = conn._config
        versions = tuple(c.versions)
        params = TransportParameters(
            original_destination_connection_id=None if conn._is_client else conn._original_dcid,
            max_idle_timeout=int(c.idle_timeout * 1000),
            stateless_reset_token=None if conn._is_client else (
                conn._cids.local[0].initial.reset_token if conn._cids.local[0].initial else None),
            max_udp_payload_size=c.max_udp_payload_size,
            initial_max_data=c.initial_max_data,
            initial_max_stream_data_bidi_local=c.initial_max_stream_data,
            initial_max_stream_data_bidi_remote=c.initial_max_stream_data,
            initial_max_stream_data_uni=c.initial_max_stream_data,
            initial_max_streams_bidi=c.max_streams_bidi,
            initial_max_streams_uni=c.max_streams_uni,
            ack_delay_exponent=c.ack_delay_exponent,
            max_ack_delay=round(c.max_ack_delay * 1000),
            disable_active_migration=c.disable_active_migration,
            active_connection_id_limit=c.active_connection_id_limit,
            initial_source_connection_id=conn._cids.local[0].initial.cid
            if conn._cids.local[0].initial else b"",
            retry_source_connection_id=conn._retry_scid if not conn._is_client else None,
            version_information=VersionInformation(conn._version, versions),
            max_datagram_frame_size=c.max_datagram_frame_size,
            grease_quic_bit=c.grease_quic_bit,
            min_ack_delay=None if c.min_ack_delay is None else int(c.min_ack_delay * 1e6),
            initial_max_path_id=c.max_path_id,
            preferred_address=conn._preferred.parameter(),  # RFC 9000 §9.6 (server only)
        )
        return params

    def create_tls(self) -> Any:
        conn = self._c
        if conn._qlog is not None:
            conn._qlog.parameters_set("local", conn._local_params)
        c = conn._config
        encoded = encode_local_parameters(conn._local_params)
        if self.tls_factory is not None:
            return self.tls_factory(conn._is_client, c, encoded)
        tls: Any = _tls_module()
        if not conn._is_client:
            # A server's TlsConfig is built once per configuration (below): looked up
            # first, so the arguments are assembled only when it is built.
            config = _SERVER_TLS_CONFIGS.get(_server_config_key(c))
            if config is None:
                config = _shared_server_tls_config(tls, c, self._tls_kwargs())
            return tls.TlsServer(config, encoded, c.ticket_store)
        return tls.TlsClient(tls.TlsConfig(**self._tls_kwargs()), encoded)

    def _tls_kwargs(self) -> dict[str, Any]:
        """The TlsConfig arguments of this connection's configuration."""
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        conn = self._c
        c = conn._config
        chain: tuple[Any, ...] = ()
        key: Any = None
        if c.certificate is not None and c.private_key is not None:
            chain = tuple(x509.load_pem_x509_certificates(c.certificate))
            key = load_pem_private_key(c.private_key, password=None)
        kwargs: dict[str, Any] = {
            "is_client": conn._is_client,
            "alpn_protocols": tuple(c.alpn_protocols),
            "server_name": c.server_name,
            "certificate_chain": chain,
            "private_key": key,
            "cafile": c.cafile,
            "cadata": c.cadata,
            "verify_peer": c.verify_peer,
            "enable_early_data": c.enable_early_data,
        }
        if conn._is_client:
            kwargs["session_ticket"] = c.session_ticket
        else:
            kwargs["require_client_cert"] = c.require_client_cert
        if c.keylog_file is not None:
            kwargs["keylog_file"] = c.keylog_file
        if c.cipher_suites is not None:
            kwargs["cipher_suites"] = tuple(c.cipher_suites)
        return kwargs

    def tls_receive(self, epoch: int, data: bytes, now: float) -> None:
        c = self._c
        if epoch == Epoch.INITIAL and self.ch_peek is not None and not c._is_client:
            data = self._peek_client_hello(data)
            if not data:
                return
        try:
            self._crypto.session.receive(self._tls_epoch(epoch), data)
        except QuicError as exc:
            # TlsAlert is a QuicError carrying crypto_error(alert) (RFC 9001 §4.8).
            raise QuicError(exc.error_code, f"TLS: {exc.reason}",
                            frame_type=FRAME_CRYPTO) from None
        self.drain_tls(now)

    @staticmethod
    def _tls_epoch(epoch: int) -> Epoch:
        """The TLS engine's Epoch (the one enum of wire/epochs.py) of a CRYPTO frame's
        epoch: a table lookup, not an enum call per CRYPTO frame."""
        return _EPOCHS[epoch]

    def drain_tls(self, now: float) -> None:
        c = self._c
        tls = self._crypto.session
        for sec in tls.pop_secrets():
            self._install_secret(int(sec.epoch), bool(sec.is_write), sec.suite, sec.secret)
        for epoch, data in tls.pop_output():
            self._crypto.write(int(epoch), bytes(data))
        if c._is_client:
            tickets = getattr(tls, "new_session_tickets", None) or []
            while self.tickets_seen < len(tickets):
                tls_ticket = tickets[self.tickets_seen]
                self.tickets_seen += 1
                # The TLS ticket carries the server's transport parameters, which a
                # 0-RTT attempt must respect (RFC 9000 §7.4.1).
                c._queue_event(SessionTicketReceived(tls_ticket))
        if c._peer_params is None and tls.peer_transport_parameters is not None:
            self.apply_peer_params(
                decode_transport_parameters(bytes(tls.peer_transport_parameters)), now)
        if not c._handshake_complete and tls.handshake_complete:
            self._on_complete(now)

    def _install_secret(self, epoch: int, is_write: bool, suite: Any, secret: bytes) -> None:
        c = self._c
        # RFC 9369 §4: 0-RTT always uses the original version (never the negotiated one).
        version = self._first_flight_version() if epoch == Epoch.ZERO_RTT else c._version
        self._crypto.install(epoch, is_write, PacketProtection.from_secret(suite, secret, version))

    def _on_complete(self, now: float) -> None:
        c = self._c
        tls = self._crypto.session
        raw = tls.peer_transport_parameters
        if raw is None:
            raise QuicError(TransportErrorCode.PROTOCOL_VIOLATION, "no peer transport parameters")
        if c._peer_params is None:
            self.apply_peer_params(decode_transport_parameters(bytes(raw)), now)
        c._handshake_complete = True
        c._multipath.check_nonce()
        c._early_data_accepted = bool(getattr(tls, "early_data_accepted", False))
        c._state = ConnState.CONNECTED
        if c._qlog is not None:
            vi = c._peer_params.version_information if c._peer_params else None
            c._qlog.version_chosen(c._version, None if vi is None or not c._is_client
                                      else vi.available_versions)
        c._queue_event(HandshakeCompleted(
            alpn_protocol=tls.alpn_protocol,
            session_resumed=bool(getattr(tls, "session_resumed", False)),
            early_data_accepted=c._early_data_accepted))
        c._ack_frequency.start(c._config, c._peer_params)
        if c._is_client and c._zero_rtt_sent and not c._early_data_accepted:
            self._on_zero_rtt_rejected()
        self._crypto.drop_zero_rtt()
        if not c._is_client:
            # RFC 9001 §4.1.2: the server's handshake is confirmed when it completes.
            c._control.queue_handshake_done()
            self.confirm(now)
            send_ticket = getattr(tls, "send_session_ticket", None)
            if send_ticket is not None and c._config.ticket_store is not None:
                send_ticket()
                self.drain_tls(now)
            self._on_server_done(now)
            # Nothing more comes from TLS on a QUIC server (RFC 9001 §4.1.3: no
            # post-handshake messages from the client), so keep only its results, not
            # the key schedule and transcript: memory of every idle connection.
            self._crypto.tls = _FinishedTls(tls)

    def confirm(self, now: float) -> None:
        """RFC 9001 §4.1.2; discard the Handshake keys (§4.9.2)."""
        c = self._c
        if c._handshake_confirmed:
            return
        c._handshake_confirmed = True
        self.discard_epoch(Epoch.HANDSHAKE)
        for path in c._paths:
            path.recovery.handshake_confirmed = True
            path.recovery.peer_completed_address_validation = True
        if c._is_client:
            c._preferred.start(now)  # RFC 9000 §9.6.1: after confirmation

    def validate_peer_params(self, p: TransportParameters) -> None:
        """RFC 9000 §7.3 (CID authentication), §7.4.1, §18.2; RFC 9368 §4."""
        c = self._c
        try:
            check_peer_parameters(p, peer_is_server=c._is_client)
        except QuicError as exc:
            # multipath §"initial_max_path_id": with a zero-length CID it is a
            # PROTOCOL_VIOLATION; every other rule a TRANSPORT_PARAMETER_ERROR.
            code = exc.error_code if exc.error_code == TransportErrorCode.PROTOCOL_VIOLATION \
                else TPE
            raise QuicError(code, exc.reason) from None
        # §7.3: absence -> TRANSPORT_PARAMETER_ERROR (checked above); mismatch with the
        # CIDs of the Initial packets -> PROTOCOL_VIOLATION (we choose it, as §7.3 allows).
        pv = TransportErrorCode.PROTOCOL_VIOLATION
        if p.initial_source_connection_id != c._peer_initial_scid:
            raise QuicError(pv, "initial_source_connection_id does not match the peer's SCID")
        if c._is_client:
            if p.original_destination_connection_id != c._original_dcid:
                raise QuicError(pv, "original_destination_connection_id mismatch")
            if c._received_retry:
                if p.retry_source_connection_id is None:
                    raise QuicError(TPE, "retry_source_connection_id missing after Retry")
                if p.retry_source_connection_id != c._retry_scid:
                    raise QuicError(pv, "retry_source_connection_id mismatch")
            elif p.retry_source_connection_id is not None:
                raise QuicError(TPE, "retry_source_connection_id without a Retry")
        if p.min_ack_delay is not None and p.min_ack_delay > p.max_ack_delay * 1000:
            # draft-ietf-quic-ack-frequency §3: min_ack_delay above max_ack_delay.
            raise QuicError(TPE, "min_ack_delay exceeds max_ack_delay")
        vi = p.version_information
        if c._is_client:
            client_check_server_info(vi, negotiated=c._version,
                                     original=self._first_flight_version(),
                                     acted_on_vn=self.acted_on_vn,
                                     client_versions=c._config.versions)
        elif vi is not None and vi.chosen_version != self._first_flight_version():
            # RFC 9368 §4: the client's Chosen Version is the version of its first flight.
            raise QuicError(TransportErrorCode.VERSION_NEGOTIATION_ERROR,
                            "version_information chosen_version mismatch")
        if c._qlog is not None:
            c._qlog.parameters_set("remote", p)
        remembered = c._remembered_params
        if c._is_client and remembered is not None and self.early_data_accepted_hint():
            # RFC 9000 §7.4.1: accepting 0-RTT, the server must not reduce these limits.
            for name in ("initial_max_data", "initial_max_stream_data_bidi_local",
                         "initial_max_stream_data_bidi_remote", "initial_max_stream_data_uni",
                         "initial_max_streams_bidi", "initial_max_streams_uni",
                         "active_connection_id_limit"):
                if getattr(p, name) < getattr(remembered, name):
                    raise QuicError(pv, f"0-RTT accepted but {name} was reduced")

    def _first_flight_version(self) -> int:
        """The original version of this connection attempt (RFC 9368 §1.2)."""
        c = self._c
        if not c._is_client:
            return self.original_version or c._version
        vi = c._local_params.version_information
        return vi.chosen_version if vi is not None else c._version

    def _peek_client_hello(self, data: bytes) -> bytes:
        """Server: hold CRYPTO bytes until the whole ClientHello is known, choose the
        version from its transport parameters, then release everything to TLS."""
        c = self._c
        held = (self.ch_peek or b"") + data
        length = client_hello_length(held)
        if length is None or len(held) < length <= MAX_PEEK:
            self.ch_peek = held
            return b""
        self.ch_peek = None
        self.original_version = c._version
        if length <= len(held):
            self._choose_version(held[:length])
        return held

    def _choose_version(self, client_hello: bytes) -> None:
        """RFC 9368 §2.3 compatible negotiation: switch before TLS writes anything, so
        every CRYPTO frame goes out in the negotiated version (RFC 9369 §4)."""
        c = self._c
        original = c._version
        chosen = server_choose_version(original, c._config.versions,
                                       client_hello_version_information(client_hello))
        if chosen == original:
            return
        self.orig_initial_recv = self._crypto.recv_keys.get(Epoch.INITIAL)
        c._version = chosen
        # Initial keys of the negotiated version from the client's DCID (RFC 9369 §3.3.1).
        self.setup_initial_keys(c._initial_dcid)
        # TLS has seen nothing yet: start it again with version_information naming the
        # negotiated version as Chosen Version (RFC 9368 §4).
        c._local_params = self.build_local_params()
        self._crypto.tls = self.create_tls()

    def switch_version(self, header: Header) -> bool:
        """A long-header packet whose version is not the connection's: True when it is
        to be processed (with ``_long_header_keys``), False to drop it."""
        c = self._c
        version = header.version
        ptype = header.packet_type
        if not c._is_client:
            if self._crypto.tls is None:
                if version in c._config.versions:
                    c._version = version  # the server speaks the client's version (§6)
                    return True
                return False
            # After switching, the client's original-version Initial and 0-RTT packets
            # are still accepted (RFC 9369 §4).
            return (version == self.original_version != c._version
                    and ptype in (PacketType.INITIAL, PacketType.ZERO_RTT))
        # Client: "the first long header Version field that differs from the original
        # version" names the negotiated version (RFC 9369 §4) -- only before the
        # server's first CRYPTO data (ServerHello) was processed, once, and only for a
        # version we offered that is compatible with ours.
        if (version is None or ptype != PacketType.INITIAL
                or version not in c._config.versions
                or c._version != self._first_flight_version()
                or not is_compatible(c._version, version)
                or Epoch.HANDSHAKE in self._crypto.recv_keys
                or Epoch.HANDSHAKE in self._crypto.discarded
                or Epoch.INITIAL in self._crypto.discarded):
            return False
        c._version = version
        self.setup_initial_keys(c._initial_dcid)
        # RFC 9369 §4: no 0-RTT in the negotiated version.
        self._crypto.drop_zero_rtt()
        return True

    def long_header_keys(self, epoch: int, version: int | None) -> PacketProtection | None:
        """Receive keys for a long-header packet of ``version``."""
        c = self._c
        if version == c._version or epoch != Epoch.INITIAL:
            return self._crypto.recv_keys.get(epoch)
        return self.orig_initial_recv

    @property
    def cipher_suite(self) -> CipherSuite | None:
        """The TLS cipher suite negotiated (RFC 9001 §5.3), None before the ServerHello."""
        suite = getattr(self._crypto.tls, "cipher_suite", None)
        return suite if isinstance(suite, CipherSuite) else None

    @property
    def peer_certificate(self) -> Any:
        """The peer's verified end-entity certificate (``cryptography.x509.Certificate``;
        a server sees one only with ``require_client_cert``), None before or without."""
        return getattr(self._crypto.tls, "peer_certificate", None)

    def early_data_accepted_hint(self) -> bool:
        return bool(getattr(self._crypto.tls, "early_data_accepted", False))

    # -- milestones of the handshake ---------------------------------------------------

    def apply_remembered(self, params: TransportParameters) -> None:
        c = self._c
        # RFC 9000 §7.4.1: 0-RTT uses the server's remembered limits.
        c._streams.credit.raise_limit(params.initial_max_data)
        c._streams.bidi.on_max_streams(params.initial_max_streams_bidi,
                                          from_transport_parameters=True)
        c._streams.uni.on_max_streams(params.initial_max_streams_uni,
                                         from_transport_parameters=True)

    def apply_peer_params(self, params: TransportParameters, now: float) -> None:
        conn = self._c
        self.validate_peer_params(params)
        conn._peer_params = params
        c = conn._config
        conn._peer_max_udp = params.max_udp_payload_size
        if params.max_idle_timeout:
            peer_idle = params.max_idle_timeout / 1000.0
            timers = conn._timers
            timers.idle_timeout = min(timers.idle_timeout, peer_idle) if timers.idle_timeout \
                else peer_idle
        conn._streams.credit.raise_limit(params.initial_max_data)
        conn._streams.bidi.on_max_streams(params.initial_max_streams_bidi,
                                          from_transport_parameters=True)
        conn._streams.uni.on_max_streams(params.initial_max_streams_uni,
                                         from_transport_parameters=True)
        for stream_id, stream in conn._streams.send.items():
            fake_peer = conn._peer_params
            if stream_id & 2:
                limit = fake_peer.initial_max_stream_data_uni
            elif (stream_id & 1) == (0 if conn._is_client else 1):
                limit = fake_peer.initial_max_stream_data_bidi_remote
            else:
                limit = fake_peer.initial_max_stream_data_bidi_local
            stream.on_max_stream_data(limit)
        if conn._is_client and params.stateless_reset_token is not None:
            conn._cids.peer[0].set_reset_token(0, params.stateless_reset_token)
        for path in conn._paths:
            path.recovery.peer_max_ack_delay = params.max_ack_delay / 1000.0
            if c.pmtud and path.pmtud is None:
                ceiling = min(c.max_udp_payload_size, params.max_udp_payload_size)
                if ceiling > path.max_datagram_size:
                    path.pmtud = Pmtud(path.max_datagram_size, ceiling)
        conn._preferred.on_peer_params(params)
        conn._multipath.issue_cids()
        conn._multipath.on_peer_params(params.initial_max_path_id)

    def _on_server_done(self, now: float) -> None:
        conn = self._c
        c = conn._config
        if c.issue_new_tokens and conn._token_manager is not None:
            token = conn._token_manager.create_new_token(
                conn._paths.primary.network_path.remote, now)
            conn._control.push(FrameRecord(NewTokenFrame(token)))

    def _on_zero_rtt_rejected(self) -> None:
        """RFC 9001 §4.6.2: 0-RTT data was not processed: send it again in 1-RTT."""
        c = self._c
        path = c._paths.primary
        for packet in path.recovery.discard_space(SpaceId.APPLICATION):
            c._streams.on_packet_lost(packet, path)

    def discard_epoch(self, epoch: int) -> None:
        """RFC 9001 §4.9: drop keys, stop acknowledging, stop retransmitting (RFC 9002 §6.4)."""
        c = self._c
        if not self._crypto.discard(epoch):
            return
        if c._paths:
            c._paths.primary.recovery.discard_space(space_of(epoch))


# A server builds one TlsConfig (parsed certificate chain, private key, validated
# settings: frozen, so shareable) per configuration, not one per connection: it saves
# the parsing on every handshake and the objects in every idle connection's memory.
_SERVER_TLS_CONFIGS: dict[tuple[Any, ...], Any] = {}
_SERVER_TLS_CACHE_SIZE = 16


def _server_config_key(c: QuicConfiguration) -> tuple[Any, ...]:
    return (c.certificate, c.private_key, tuple(c.alpn_protocols), c.server_name, c.cafile,
            c.cadata, c.verify_peer, c.require_client_cert, c.enable_early_data, c.keylog_file,
            None if c.cipher_suites is None else tuple(c.cipher_suites))


def _shared_server_tls_config(tls: Any, c: QuicConfiguration, kwargs: dict[str, Any]) -> Any:
    key = _server_config_key(c)
    config = _SERVER_TLS_CONFIGS.get(key)
    if config is None:
        config = tls.TlsConfig(**kwargs)
        if len(_SERVER_TLS_CONFIGS) >= _SERVER_TLS_CACHE_SIZE:
            _SERVER_TLS_CONFIGS.pop(next(iter(_SERVER_TLS_CONFIGS)))
        _SERVER_TLS_CONFIGS[key] = config
    return config


def _tls_module() -> Any:
    """tquic.crypto.tls, imported when the first connection starts its handshake."""
    import importlib

    return importlib.import_module("tquic.crypto.tls")


class _FinishedTls:
    """What a server keeps of its TLS session once the handshake is over."""

    __slots__ = ("alpn_protocol", "cipher_suite", "early_data_accepted", "peer_certificate",
                 "peer_transport_parameters", "session_resumed")

    handshake_complete = True

    def __init__(self, tls: Any) -> None:
        self.alpn_protocol = tls.alpn_protocol
        self.cipher_suite = getattr(tls, "cipher_suite", None)
        self.early_data_accepted = bool(getattr(tls, "early_data_accepted", False))
        self.session_resumed = bool(getattr(tls, "session_resumed", False))
        self.peer_transport_parameters = tls.peer_transport_parameters
        self.peer_certificate = getattr(tls, "peer_certificate", None)  # the client's, if asked

    def receive(self, epoch: Any, data: bytes) -> None:
        # RFC 9001 §4.1.3: a client sends no post-handshake TLS message over QUIC;
        # RFC 9846 §6: unexpected_message (0x0a), as a CRYPTO_ERROR (RFC 9001 §4.8).
        raise QuicError(0x100 + 10, "TLS message after the handshake")

    def pop_secrets(self) -> list[Any]:
        return []

    def pop_output(self) -> list[Any]:
        return []


if TYPE_CHECKING:
    from tquic.core.crypto_levels import TlsSession
    from tquic.crypto.tls import TlsClient, TlsServer

    def _sessions_fit(client: TlsClient, server: TlsServer,
                      finished: _FinishedTls) -> tuple[TlsSession, ...]:
        """mypy checks here that tquic.crypto.tls's endpoints and a finished server
        session are what CryptoLevels.tls may hold (never called)."""
        return client, server, finished

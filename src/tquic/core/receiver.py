"""The receive path: a datagram in, split into packets (RFC 9000 §12.2), each
routed to its path and packet-number space, its protection removed (RFC 9001 §5),
its frames parsed (wire/frame_parsers.py) and handed to the frame handlers
(core/frame_handlers.py).  Also: stateless resets (§10.3), Version Negotiation
(§6), Retry (§17.2.5), and datagrams buffered until their keys arrive (RFC 9001
§5.7).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tquic.core.conn_base import ConnState, Epoch
from tquic.crypto.protection import DecryptionError
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import PacketSpace, Path
from tquic.wire.errors import QuicError, TransportErrorCode
from tquic.wire.frames import (
    parse_frames,
)
from tquic.wire.packet import (
    Header,
    PacketType,
    parse_header,
    split_datagram,
    verify_retry_integrity,
)

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection

logger = logging.getLogger("tquic.connection")

_PACKET_EPOCH = {PacketType.INITIAL: Epoch.INITIAL, PacketType.HANDSHAKE: Epoch.HANDSHAKE,
                 PacketType.ZERO_RTT: Epoch.ZERO_RTT, PacketType.ONE_RTT: Epoch.ONE_RTT}
MAX_UNDECRYPTABLE = 10  # datagrams buffered until their keys arrive (RFC 9001 §5.7)
CLOSE_RESPONSES = 8  # CONNECTION_CLOSE repeats while closing (RFC 9000 §10.2.1)

_Opened = tuple[Path, PacketSpace, bytes, bytes, int, int | None]
"""An unprotected packet: its path and packet-number space, the plain header, the
payload, the packet number, and the largest packet number received before it."""


class Receiver:
    """Datagrams in.  Owns the datagrams waiting for their keys and the DCIDs a
    server accepted before its own CIDs were known; the rest it reads from, and
    hands to, the components that own it."""

    __slots__ = ("_c", "accepted_dcids", "undecryptable")

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn
        self.undecryptable: list[tuple[bytes, NetworkPath, float, int]] = []
        self.accepted_dcids: set[bytes] = set()

    def receive(self, data: bytes, network_path: NetworkPath, now: float) -> None:
        c = self._c
        state = c._state
        if state >= ConnState.DRAINING:
            return
        if state == ConnState.CLOSING:
            # RFC 9000 §10.2.1: answer with CONNECTION_CLOSE, a bounded number of times.
            if c._close_responses < CLOSE_RESPONSES:
                c._close_responses += 1
                c._close_pending = True
            return
        if not c._paths:
            if c._is_client:
                return
            c._start(network_path, now)
        config = c._config
        try:
            if data and not data[0] & 0x80:
                # A short header ends the datagram (RFC 9000 §12.2: it has no Length):
                # a datagram starting with one is that one packet.
                headers = [parse_header(data, 0, config.connection_id_length,
                                        allow_cleared_fixed_bit=config.grease_quic_bit)]
            else:
                headers = split_datagram(data, config.connection_id_length,
                                         allow_cleared_fixed_bit=config.grease_quic_bit)
        except QuicError:
            self._check_stateless_reset(data, now)
            return
        processed = False
        start = 0
        try:
            for header in headers:
                if self._receive_packet(data, start, header, network_path, now):
                    processed = True
                start = header.packet_end
                if c._state >= ConnState.CLOSING:
                    break
        except QuicError:
            # The packet decrypted but its content is an error (e.g. a TLS alert on the
            # ClientHello): the datagram still counts towards the anti-amplification
            # budget (RFC 9000 §8.1), else the CONNECTION_CLOSE could never be sent.
            processed = True
            raise
        finally:
            if processed:
                path = c._rx_path or c._paths.primary
                # The endpoint reuses one NetworkPath per peer: the path adopts that
                # (equal) object, so that this test and the one in _receive_packet are
                # identity tests, not a dataclass __eq__ call per datagram.
                known = path.network_path
                if network_path is not known and network_path == known:
                    path.network_path = known = network_path
                if network_path is known:
                    path.bytes_received += len(data)
        if not processed and headers[0].packet_type == PacketType.ONE_RTT:
            self._check_stateless_reset(data, now)

    def _check_stateless_reset(self, data: bytes, now: float) -> None:
        c = self._c
        if any(cids.is_stateless_reset(data) for cids in c._cids.peer.values()):
            # RFC 9000 §10.3.1: enter draining and send nothing more.
            c._enter_draining(0, None, "stateless reset", False, now)

    def _receive_packet(self, data: bytes, start: int, header: Header, network_path: NetworkPath,
                        now: float) -> bool:
        c = self._c
        ptype = header.packet_type
        if ptype == PacketType.VERSION_NEGOTIATION:
            self._on_version_negotiation(header, now)
            return False
        if ptype == PacketType.RETRY:
            self._on_retry(data[start:], header, now)
            return False
        if ptype == PacketType.UNKNOWN_VERSION:
            return False
        if header.is_long and header.version != c._version and (
                not c._handshake.switch_version(header)):
            return False
        epoch = _PACKET_EPOCH[ptype]
        if not self._accept_dcid(header, epoch):
            return False
        packet = data[start:header.packet_end] if start or header.packet_end != len(data) else data
        pn_offset = header.pn_offset - start
        if epoch == Epoch.ONE_RTT:
            opened = self._open_short(packet, pn_offset, header, network_path, now)
        else:
            opened = self._open_long(packet, pn_offset, header, epoch, network_path, now)
        if opened is None:
            return False
        path, space, plain, payload, pn, largest = opened
        if plain[0] & (0x18 if epoch == Epoch.ONE_RTT else 0x0C):
            # RFC 9000 §17.2, §17.3.1: reserved bits must be zero after unprotection.
            raise QuicError(TransportErrorCode.PROTOCOL_VIOLATION, "reserved bits set")
        tracker = space.ack_tracker
        # Above the largest packet number processed nothing is a duplicate (the usual
        # case, no range lookup); at or below it the tracker knows.
        if largest is not None and pn <= largest and tracker.is_duplicate(pn):
            return False
        if header.is_long and epoch == Epoch.INITIAL:
            self._on_first_initial(header)
        frames = parse_frames(payload)
        if c._qlog is not None:
            c._qlog.packet_received(now, epoch, pn, len(packet), path.path_id, frames,
                                       plain[0], c._crypto.one_rtt.updates
                                       if epoch == Epoch.ONE_RTT and c._crypto.one_rtt else None)
        eliciting, non_probing = c._frame_handlers.handle(frames, epoch, path, header.dcid,
                                                     network_path, now)
        if c._state >= ConnState.DRAINING:
            return True
        self._processed(path, space, epoch, pn, largest, eliciting,
                                  non_probing, network_path, len(data), now)
        return True

    def _open_short(self, packet: bytes, pn_offset: int, header: Header,
                    network_path: NetworkPath, now: float) -> _Opened | None:
        """Remove the 1-RTT protection; under multipath the DCID names the path, hence
        the packet-number space and the nonce.  None: drop (or buffered until the
        1-RTT keys exist)."""
        c = self._c
        one_rtt = c._crypto.one_rtt
        if one_rtt is None:
            self._buffer_undecryptable(packet, network_path, now)
            return None
        index = c._cids.index  # CidTable.path_of, inlined: once per packet
        path_id = index.get(header.dcid, 0) if index else 0
        rx_path = c._paths.get(path_id)
        largest = rx_path.space.ack_tracker.largest_received if rx_path is not None else None
        try:
            plain, payload, pn = one_rtt.unprotect(
                packet, pn_offset, -1 if largest is None else largest, path_id, now,
                c._timers.previous_keys_keep)
        except DecryptionError:
            return None
        if rx_path is None:
            rx_path = c._multipath.accept_path(path_id, network_path, now)
            if rx_path is None:
                return None
        return rx_path, rx_path.space, plain, payload, pn, largest

    def _open_long(self, packet: bytes, pn_offset: int, header: Header, epoch: int,
                   network_path: NetworkPath, now: float) -> _Opened | None:
        """Remove the protection of an Initial, 0-RTT or Handshake packet.  None: drop
        (or buffered until the Handshake keys exist)."""
        c = self._c
        path = c._paths.get(0) or c._paths.primary
        if epoch == Epoch.ZERO_RTT:
            if c._is_client:
                return None
            space = path.space
        else:
            if epoch in c._crypto.discarded:
                return None
            space = c._crypto.spaces[epoch]
        keys = c._handshake.long_header_keys(epoch, header.version)
        if keys is None:
            if epoch != Epoch.INITIAL:
                self._buffer_undecryptable(packet, network_path, now)
            return None
        largest = space.ack_tracker.largest_received
        try:
            plain, payload, pn = keys.unprotect(packet, pn_offset,
                                                -1 if largest is None else largest)
        except DecryptionError:
            return None
        return path, space, plain, payload, pn, largest

    def _processed(self, path: Path, space: PacketSpace, epoch: int, pn: int,
                             largest: int | None, eliciting: bool, non_probing: bool,
                             network_path: NetworkPath, datagram_size: int,
                             now: float) -> None:
        """A packet was processed: record it for ACKs, restart the idle timer, and
        react to what it proves (a validated address, a peer's new address)."""
        c = self._c
        newest = largest is None or pn > largest
        space.ack_tracker.on_packet_received(pn, now, eliciting, c._rx_ecn)
        c._received_any = True
        c._activity_since_send = True
        c._timers.idle_restarted_at = now  # restart_idle_timer(now), without the call
        if epoch == Epoch.HANDSHAKE and not c._is_client:
            # RFC 9000 §8.1: a Handshake packet validates the client's address;
            # RFC 9001 §4.9.1: the server discards Initial keys.
            if not path.validated and network_path == path.network_path:
                path.on_validated()
            c._handshake.discard_epoch(Epoch.INITIAL)
        c._rx_path = path
        known = path.network_path
        if network_path is not known:
            if network_path == known:
                # An equal object (a caller that builds one per datagram): the path adopts
                # it, so the test in ``receive`` and the next datagram's are identity tests.
                path.network_path = network_path
            elif epoch == Epoch.ONE_RTT and path.usable:
                c._migration.on_address_change(path, network_path, non_probing and newest,
                                               datagram_size, now)
        if self.undecryptable and (epoch == Epoch.HANDSHAKE or epoch == Epoch.INITIAL):
            self.retry_undecryptable(now)

    def _accept_dcid(self, header: Header, epoch: int) -> bool:
        c = self._c
        dcid = header.dcid
        cids = c._cids
        if (dcid in cids.index and not header.is_long) or dcid in cids.local[0]:
            return True  # the index (a dict) first: the other paths' CIDs, no call
        if not c._is_client:
            if not self.accepted_dcids and header.is_long and epoch in (Epoch.INITIAL,
                                                                          Epoch.ZERO_RTT):
                self.accepted_dcids.add(dcid)  # the client's chosen DCID (RFC 9000 §7.2)
                if epoch == Epoch.INITIAL:
                    self._server_setup(header)
                return epoch == Epoch.INITIAL
            return dcid in self.accepted_dcids and header.is_long
        return False

    def _server_setup(self, header: Header) -> None:
        """First Initial from the client: version, Initial keys, TLS (RFC 9000 §7.2)."""
        c = self._c
        if header.version is not None:
            c._version = header.version
        if not c._original_dcid:
            c._original_dcid = header.dcid
        c._handshake.setup_initial_keys(header.dcid)
        c._start_tls(0.0)

    def _on_first_initial(self, header: Header) -> None:
        c = self._c
        if c._peer_initial_scid is not None:
            return
        c._peer_initial_scid = header.scid
        path = c._paths.primary
        path.peer_cid = c._cids.peer[0].set_initial(header.scid)

    def _buffer_undecryptable(self, packet: bytes, network_path: NetworkPath,
                              now: float) -> None:
        c = self._c
        if len(self.undecryptable) < MAX_UNDECRYPTABLE:
            # The ECN mark travels with it: it is counted once the packet decrypts.
            self.undecryptable.append((bytes(packet), network_path, now, c._rx_ecn))

    def retry_undecryptable(self, now: float) -> None:
        c = self._c
        pending, self.undecryptable = self.undecryptable, []
        current = c._rx_ecn
        for packet, network_path, _, ecn in pending:
            c._rx_ecn = ecn
            self.receive(packet, network_path, now)
        c._rx_ecn = current

    def _on_version_negotiation(self, header: Header, now: float) -> None:
        """Client (RFC 9000 §6.2, RFC 9368 §4): restart with a common version, or give up."""
        c = self._c
        if (not c._is_client or c._received_any or c._received_retry
                or c._version in header.supported_versions
                or header.dcid not in c._cids.local[0] or header.scid != c._initial_dcid):
            return
        common = [v for v in c._config.versions if v in header.supported_versions]
        if not common:
            c._enter_draining(TransportErrorCode.VERSION_NEGOTIATION_ERROR, None,
                                 "no common version", False, now)
            c._state = ConnState.TERMINATED
            return
        c._version = common[0]
        c._received_any = True  # only one Version Negotiation is acted upon
        c._handshake.acted_on_vn = True  # RFC 9368 §4: checked against the server's parameters
        c._handshake.setup_initial_keys(c._initial_dcid)
        c._path_setup.reset_recovery(c._paths.primary)
        c._crypto.reset_streams()
        c._start_tls(now)

    def _on_retry(self, packet: bytes, header: Header, now: float) -> None:
        """Client (RFC 9000 §17.2.5.2): at most one Retry, before any other packet."""
        c = self._c
        if (not c._is_client or c._received_retry or c._received_any
                or not header.token or header.version != c._version
                or header.dcid not in c._cids.local[0]):
            return
        if not verify_retry_integrity(c._version, packet, c._original_dcid):
            return
        c._received_retry = True
        c._retry_scid = header.scid
        c._token = header.token
        c._handshake.setup_initial_keys(header.scid)
        c._path_setup.reset_recovery(c._paths.primary)

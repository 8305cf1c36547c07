"""The crypto levels of a connection: what exists per encryption level (RFC 9001 §4).

Per epoch (Initial, 0-RTT, Handshake, 1-RTT): the packet protection each way, the
CRYPTO stream each way (RFC 9000 §19.6: an ordered byte stream per level, no
flow control), the packet-number space of Initial and Handshake (1-RTT's is each
path's), and which epochs were discarded (RFC 9001 §4.9).  The TLS session that
fills them sits behind ``TlsSession``, the few members the engine uses.

``Handshake`` (core/handshake.py) drives TLS and decides when keys come and go;
this class keeps them and answers the receive path, the packet builder, the
timers and the retransmission records.  The attributes read per packet
(``one_rtt``, ``send_keys``, ``send_streams``) are plain slots, read without a
call; changes go through the methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tquic.core.conn_base import Epoch
from tquic.core.key_update import OneRttKeys
from tquic.core.recv_stream import RecvStream
from tquic.core.send_stream import SendStream
from tquic.crypto.protection import PacketProtection, initial_protections
from tquic.paths.ack_tracker import AckTracker
from tquic.paths.path import PacketSpace
from tquic.wire.epochs import SpaceId
from tquic.wire.errors import QuicError, TransportErrorCode

if TYPE_CHECKING:
    from tquic.core.qlog_events import EngineQlog
    from tquic.core.records import CryptoRecord

CRYPTO_BUFFER_LIMIT = 64 * 1024  # bytes of CRYPTO data buffered ahead per epoch (§7.5)
_UNLIMITED = (1 << 62) - 1  # CRYPTO data is not flow controlled (RFC 9000 §7.5)


class TlsSecret(Protocol):
    """A traffic secret handed out by TLS for one epoch and direction."""

    @property
    def epoch(self) -> int: ...
    @property
    def is_write(self) -> bool: ...
    @property
    def suite(self) -> Any: ...
    @property
    def secret(self) -> bytes: ...


class TlsSession(Protocol):
    """The TLS 1.3 session as the engine drives it (RFC 9001 §4.1): CRYPTO bytes in
    per epoch, handshake bytes and secrets out.  tquic.crypto.tls's TlsClient and
    TlsServer, a test's stand-in, and a finished server session all fit; optional
    results (cipher_suite, early_data_accepted, session_resumed, peer_certificate,
    new_session_tickets) are read with ``getattr`` in core/handshake.py."""

    @property
    def handshake_complete(self) -> bool: ...
    @property
    def alpn_protocol(self) -> str | None: ...
    @property
    def peer_transport_parameters(self) -> bytes | None: ...
    def receive(self, epoch: Any, data: bytes) -> None: ...
    def pop_secrets(self) -> Sequence[TlsSecret]: ...
    def pop_output(self) -> Sequence[tuple[Any, bytes | bytearray]]: ...


@dataclass(frozen=True, slots=True)
class CryptoState:
    """A read-only snapshot of a connection's crypto levels (``QuicConnection.crypto_state``):
    what exists per epoch (RFC 9001 §4), the 1-RTT key phases (§6) and the OpenSSL
    contexts the keys hold (what ``release_idle_state`` frees)."""

    send_keys: frozenset[Epoch]  # epochs we can protect packets of (1-RTT: both halves in)
    recv_keys: frozenset[Epoch]  # epochs we can open packets of
    discarded: frozenset[Epoch]  # epochs whose keys and state are gone (§4.9)
    spaces: frozenset[Epoch]  # connection-level packet-number spaces held (Initial, Handshake)
    crypto_streams: frozenset[Epoch]  # CRYPTO streams held, either direction
    send_key_phase: int  # the Key Phase bit we send (§6.1)
    recv_key_phase: int  # the peer's current Key Phase bit
    key_updates: int  # 1-RTT send-key generations after the first (ours and the peer's)
    key_update_acked_at: float | None  # when a packet of our send phase was first acknowledged
    # Keys holding OpenSSL contexts now, named "<epoch>:<send|recv>" (1-RTT also
    # "1rtt:recv_next", the next phase derived ahead, and "1rtt:recv_prev").
    contexts_built: frozenset[str]


_KEY_NAME = {Epoch.INITIAL: "initial", Epoch.ZERO_RTT: "0rtt", Epoch.HANDSHAKE: "handshake"}


class CryptoLevels:
    """Keys, CRYPTO streams and Initial/Handshake packet-number spaces per epoch, the
    discarded epochs, and the TLS session."""

    __slots__ = ("_one_rtt_recv", "_one_rtt_send", "_qlog", "discarded", "one_rtt",
                 "recv_keys", "recv_streams", "send_keys", "send_streams", "spaces", "tls")

    def __init__(self, qlog: EngineQlog | None) -> None:
        self._qlog = qlog
        self.send_keys: dict[int, PacketProtection] = {}  # Initial, 0-RTT, Handshake
        self.recv_keys: dict[int, PacketProtection] = {}
        self.one_rtt: OneRttKeys | None = None  # both directions, with key update (§6)
        self._one_rtt_send: PacketProtection | None = None  # until both halves are here
        self._one_rtt_recv: PacketProtection | None = None
        self.send_streams: dict[int, SendStream] = {}
        self.recv_streams: dict[int, RecvStream] = {}
        self.spaces: dict[int, PacketSpace] = {
            Epoch.INITIAL: PacketSpace(SpaceId.INITIAL, AckTracker(immediate_space=True), None),
            Epoch.HANDSHAKE: PacketSpace(SpaceId.HANDSHAKE, AckTracker(immediate_space=True),
                                         None),
        }
        self.discarded: set[int] = set()
        self.tls: TlsSession | None = None
        self.reset_streams()

    @property
    def session(self) -> TlsSession:
        """The TLS session, which exists once the handshake started
        (``QuicConnection._start_tls``)."""
        tls = self.tls
        if tls is None:
            raise QuicError(TransportErrorCode.INTERNAL_ERROR, "no TLS session yet")
        return tls

    # -- keys ----------------------------------------------------------------------------

    def install_initial(self, version: int, dcid: bytes, is_client: bool) -> None:
        """Initial keys from the client's first DCID (RFC 9001 §5.2; v2: RFC 9369 §3.3.1)."""
        send, recv = initial_protections(version, dcid, is_client)
        self.send_keys[Epoch.INITIAL] = send
        self.recv_keys[Epoch.INITIAL] = recv
        if self._qlog is not None:
            self._qlog.key_installed(Epoch.INITIAL, True)
            self._qlog.key_installed(Epoch.INITIAL, False)

    def install(self, epoch: int, is_write: bool, protection: PacketProtection) -> None:
        """A key from TLS; the 1-RTT keys are usable once both directions are here."""
        if self._qlog is not None:
            self._qlog.key_installed(epoch, is_write)
        if epoch == Epoch.ONE_RTT:
            if is_write:
                self._one_rtt_send = protection
            else:
                self._one_rtt_recv = protection
            if self._one_rtt_send is not None and self._one_rtt_recv is not None:
                self.one_rtt = OneRttKeys(self._one_rtt_send, self._one_rtt_recv)
            return
        (self.send_keys if is_write else self.recv_keys)[epoch] = protection

    def can_send(self, epoch: int) -> bool:
        """Keys to send packets of ``epoch`` (Initial, 0-RTT, Handshake) exist."""
        return epoch in self.send_keys

    def drop_zero_rtt(self) -> None:
        """No more 0-RTT packets: the handshake completed, or the version changed (RFC
        9369 §4: no 0-RTT in the negotiated version)."""
        self.send_keys.pop(Epoch.ZERO_RTT, None)

    def release(self) -> None:
        """Drop the OpenSSL contexts of every key (an idle connection's memory); the next
        packet rebuilds them."""
        if self.one_rtt is not None:
            self.one_rtt.release()
        for keys in (*self.send_keys.values(), *self.recv_keys.values()):
            keys.release()

    def state(self) -> CryptoState:
        """A snapshot of what the levels hold (``CryptoState``)."""
        one_rtt = self.one_rtt
        keys: list[tuple[str, PacketProtection | None]] = [
            (f"{_KEY_NAME[Epoch(epoch)]}:send", k) for epoch, k in self.send_keys.items()]
        keys += [(f"{_KEY_NAME[Epoch(epoch)]}:recv", k) for epoch, k in self.recv_keys.items()]
        one_rtt_epochs: frozenset[Epoch] = frozenset()
        if one_rtt is not None:
            one_rtt_epochs = frozenset((Epoch.ONE_RTT,))
            keys += [("1rtt:send", one_rtt.send), ("1rtt:recv", one_rtt.recv),
                     ("1rtt:recv_next", one_rtt.recv_next), ("1rtt:recv_prev", one_rtt.recv_prev)]
        return CryptoState(
            send_keys=frozenset(map(Epoch, self.send_keys)) | one_rtt_epochs,
            recv_keys=frozenset(map(Epoch, self.recv_keys)) | one_rtt_epochs,
            discarded=frozenset(map(Epoch, self.discarded)),
            spaces=frozenset(map(Epoch, self.spaces)),
            crypto_streams=frozenset(map(Epoch, {*self.send_streams, *self.recv_streams})),
            send_key_phase=one_rtt.send_phase if one_rtt is not None else 0,
            recv_key_phase=one_rtt.recv_phase if one_rtt is not None else 0,
            key_updates=one_rtt.updates if one_rtt is not None else 0,
            key_update_acked_at=one_rtt.phase_acked_at if one_rtt is not None else None,
            contexts_built=frozenset(name for name, k in keys
                                     if k is not None and k.holds_contexts))

    # -- CRYPTO streams ------------------------------------------------------------------

    def reset_streams(self) -> None:
        """Empty CRYPTO streams for Initial, Handshake and 1-RTT (a new start after
        Version Negotiation begins them again)."""
        for epoch in (Epoch.INITIAL, Epoch.HANDSHAKE, Epoch.ONE_RTT):
            self.send_streams[epoch] = SendStream(-1, max_stream_data=_UNLIMITED)
            self.recv_streams[epoch] = RecvStream(-1, max_stream_data=CRYPTO_BUFFER_LIMIT)

    def write(self, epoch: int, data: bytes) -> None:
        """Handshake bytes from TLS, to send in CRYPTO frames of ``epoch``."""
        self.send_streams[epoch].write(data)

    def receive_stream(self, epoch: int) -> RecvStream | None:
        """Where CRYPTO frames of ``epoch`` go; None once the epoch is discarded."""
        if epoch in self.discarded:
            return None
        return self.recv_streams.get(epoch)

    def on_acked(self, record: CryptoRecord) -> None:
        crypto = self.send_streams.get(record.epoch)
        if crypto is not None:
            crypto.on_ack(record.offset, record.length, False)

    def on_lost(self, record: CryptoRecord) -> None:
        """Send the range again, unless its epoch is gone (RFC 9001 §4.9)."""
        crypto = self.send_streams.get(record.epoch)
        if crypto is not None and record.epoch not in self.discarded:
            crypto.on_lost(record.offset, record.length, False)

    def handshake_ack_deadline(self) -> float | None:
        """When an ACK of Initial or Handshake packets is due, of the spaces whose
        receive keys are still there (RFC 9000 §13.2.1: these are acknowledged at once)."""
        deadlines = [deadline for epoch, space in self.spaces.items()
                     if not space.discarded and epoch in self.recv_keys
                     and (deadline := space.ack_tracker.ack_deadline()) is not None]
        return min(deadlines) if deadlines else None

    # -- discarding (RFC 9001 §4.9) ------------------------------------------------------

    def discard(self, epoch: int) -> bool:
        """Drop the keys, CRYPTO streams and packet-number space of ``epoch``; False
        when it was discarded already."""
        if epoch in self.discarded:
            return False
        self.discarded.add(epoch)
        if self._qlog is not None:
            self._qlog.key_discarded(epoch)
        self.send_keys.pop(epoch, None)
        self.recv_keys.pop(epoch, None)
        # CRYPTO frames of a discarded epoch are dropped with its packets (their keys
        # are gone): its reassembly buffer, send buffer and packet-number space can go
        # too (nothing of the epoch is sent, acknowledged or retransmitted again).
        # Memory per idle connection: the handshake-only state is freed, not kept.
        self.recv_streams.pop(epoch, None)
        self.send_streams.pop(epoch, None)
        space = self.spaces.pop(epoch, None)
        if space is not None:
            space.discarded = True
            space.ack_tracker.discard()
            space.probe_packets = 0
        return True

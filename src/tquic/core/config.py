"""QuicConfiguration: everything a connection is told before it starts.

Frozen and validated at construction (DESIGN.md "Configuration is validated
when it is built"): a bad value raises ``ConfigurationError`` naming the field
and the rule, never an ``assert`` and never later inside the engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tquic.crypto.keys import CipherSuite
from tquic.wire.version import SUPPORTED_VERSIONS

VARINT_MAX = (1 << 62) - 1
MAX_STREAMS_LIMIT = 1 << 60  # RFC 9000 §4.6
MIN_UDP_PAYLOAD = 1200  # RFC 9000 §14: every path supports at least 1200 bytes
MAX_UDP_PAYLOAD = 65527  # RFC 9000 §18.2 max_udp_payload_size upper bound
MAX_ACK_DELAY_LIMIT = (1 << 14) / 1000.0  # RFC 9000 §18.2: max_ack_delay < 2^14 ms


class ConfigurationError(ValueError):
    """A configuration value that is out of range or inconsistent; names the field."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


QuicLogger = Callable[[str, dict[str, Any]], None]
"""A hook called with (event name, data) for qlog-style tracing."""


@dataclass(frozen=True, slots=True)
class QuicConfiguration:
    """Settings of one endpoint side.  Times are seconds, sizes bytes.

    Flow-control windows start at ``initial_max_data`` /
    ``initial_max_stream_data`` and auto-tune up to ``max_data`` /
    ``max_stream_data`` (RFC 9000 §4.2 leaves the policy to the receiver).
    """

    is_client: bool = True
    alpn_protocols: tuple[str, ...] = ()
    # PEM bytes of the certificate chain and private key (servers; clients for mTLS).
    certificate: bytes | None = None
    private_key: bytes | None = None
    cafile: str | None = None
    cadata: bytes | None = None
    verify_peer: bool = True
    # Server: ask for a client certificate (RFC 8446 §4.3.2 CertificateRequest) and
    # refuse the handshake without one that verifies against cafile/cadata (§4.4.2).
    require_client_cert: bool = False
    server_name: str | None = None
    # Preference order; the first is what a client offers (RFC 9368 compatible negotiation).
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    idle_timeout: float = 30.0
    initial_max_data: int = 1 << 20
    max_data: int = 16 << 20
    initial_max_stream_data: int = 256 << 10
    max_stream_data: int = 6 << 20
    max_streams_bidi: int = 128
    max_streams_uni: int = 128
    max_datagram_frame_size: int | None = None
    datagram_queue_size: int = 256
    congestion_control: str = "cubic"
    initial_rtt: float = 0.333  # RFC 9002 §6.2.2
    active_connection_id_limit: int = 4
    connection_id_length: int = 8
    # Server: makes the CIDs we issue (e.g. tquic.wire.quic_lb.QuicLbEncoder, so a load
    # balancer or the kernel's SO_REUSEPORT program routes them); None: random CIDs.
    # Must return connection_id_length bytes.
    connection_id_generator: Callable[[], bytes] | None = None
    ack_delay_exponent: int = 3
    max_ack_delay: float = 0.025
    # Our min_ack_delay transport parameter (draft-ietf-quic-ack-frequency §3): we accept
    # ACK_FREQUENCY and IMMEDIATE_ACK frames and will delay ACKs no less than this.
    # None: not advertised (and then we send no ACK_FREQUENCY either, see below).
    min_ack_delay: float | None = 0.001
    # Send ACK_FREQUENCY (fewer ACKs in bulk transfer) and IMMEDIATE_ACK with PTO probes
    # when BOTH sides advertised min_ack_delay (core/ack_frequency.py).
    request_ack_frequency: bool = True
    max_udp_payload_size: int = 1452  # PMTUD ceiling (and our transport parameter)
    pmtud: bool = True
    # ECN (RFC 9000 §13.4): mark ECT(0) (ECT(1) for an L4S controller such as prague) on
    # paths that pass ECN validation, and react to CE.  Received marks are always counted.
    ecn: bool = True
    send_buffer_size: int = 1 << 20  # per stream, before writable() turns False
    # Client: a session ticket from a previous connection (resumption, 0-RTT) and
    # a NEW_TOKEN token for address validation.
    session_ticket: Any = None
    token: bytes = b""
    enable_early_data: bool = False
    # Server: a ticket store for resumption (tquic.crypto.tls TicketStore) and
    # NEW_TOKEN issuance.
    ticket_store: Any = None
    issue_new_tokens: bool = True
    # Key authenticating Retry and NEW_TOKEN tokens and deriving stateless reset
    # tokens; random per process unless given (servers behind a load balancer
    # share one).
    token_key: bytes = field(default_factory=lambda: os.urandom(32))
    stateless_reset_key: bytes = field(default_factory=lambda: os.urandom(32))
    disable_active_migration: bool = False
    # Server: the preferred_address transport parameter (RFC 9000 §9.6, §18.2): an
    # IPv4 and/or IPv6 (host, port) -- or "host:port" -- the client should move to
    # after the handshake.  tquic.serve() listens on them too.
    preferred_address_v4: tuple[str, int] | None = None
    preferred_address_v6: tuple[str, int] | None = None
    # Client: validate and migrate to the server's preferred address (§9.6.1).
    follow_preferred_address: bool = True
    grease_quic_bit: bool = True
    # Multipath (draft-ietf-quic-multipath): our initial_max_path_id; None = not offered
    # (the connection is then exactly RFC 9000).  Used only if the peer offers it too.
    max_path_id: int | None = None
    scheduler: str = "minrtt"  # paths/schedulers registry name
    failover_pto_count: int = 2  # PTOs without ACK before a path is declared failed
    # Suspect a path whose ACKs stop while other paths' keep coming, before any PTO:
    # no new data on it, its data in flight sent again elsewhere (paths/silence.py).
    suspect_silent_paths: bool = True
    accept_paths: bool = True  # server: accept the paths a client opens
    backup_keepalive: float | None = 5.0  # PING interval on idle backup paths (s)
    # Per path ID controller overrides, e.g. ((1, "bbr"),); others use congestion_control.
    path_congestion_control: tuple[tuple[int, str], ...] = ()
    quic_logger: QuicLogger | None = None
    keylog_file: str | None = None
    # TLS 1.3 cipher suites in preference order (RFC 9001 §5.3): CipherSuite members,
    # their code points, or names ("AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
    # case-insensitive); stored as CipherSuite.  None: the TLS engine's defaults.
    cipher_suites: tuple[CipherSuite | str | int, ...] | None = None

    def __post_init__(self) -> None:
        _check_alpn(self.alpn_protocols)
        if not isinstance(self.ecn, bool):
            raise ConfigurationError("ecn", f"must be True or False, got {self.ecn!r}")
        if (self.certificate is None) != (self.private_key is None):
            raise ConfigurationError(
                "certificate", "certificate and private_key must be given together"
            )
        if not self.is_client and self.certificate is None:
            raise ConfigurationError("certificate", "a server needs a certificate and private key")
        if self.cafile is not None and not os.path.isfile(self.cafile):
            raise ConfigurationError("cafile", f"no such file: {self.cafile!r}")
        if self.require_client_cert and self.is_client:
            raise ConfigurationError("require_client_cert", "a server setting (a client "
                                     "presents certificate/private_key when asked)")
        if self.require_client_cert and self.cafile is None and self.cadata is None:
            raise ConfigurationError("cafile", "require_client_cert needs the CA that signs "
                                     "the client certificates (cafile or cadata)")
        if self.server_name is not None and not 0 < len(self.server_name) <= 255:
            raise ConfigurationError("server_name", "must be 1..255 characters")
        _check_versions(self.versions)
        if self.cipher_suites is not None:
            object.__setattr__(self, "cipher_suites", _parse_cipher_suites(self.cipher_suites))
        if not 0 <= self.idle_timeout <= 600_000:
            raise ConfigurationError("idle_timeout", "must be within [0, 600000] seconds")
        for name in ("initial_max_data", "initial_max_stream_data"):
            value = getattr(self, name)
            if not 0 <= value <= VARINT_MAX:
                raise ConfigurationError(name, "must be within [0, 2^62-1]")
        if self.max_data < self.initial_max_data:
            raise ConfigurationError("max_data", "must be at least initial_max_data")
        if self.max_stream_data < self.initial_max_stream_data:
            raise ConfigurationError("max_stream_data", "must be at least initial_max_stream_data")
        for name in ("max_streams_bidi", "max_streams_uni"):
            if not 0 <= getattr(self, name) <= MAX_STREAMS_LIMIT:
                raise ConfigurationError(name, "must be within [0, 2^60] (RFC 9000 §4.6)")
        if self.max_datagram_frame_size is not None and not (
            0 <= self.max_datagram_frame_size <= VARINT_MAX
        ):
            raise ConfigurationError("max_datagram_frame_size", "must be within [0, 2^62-1]")
        if self.datagram_queue_size < 1:
            raise ConfigurationError("datagram_queue_size", "must be at least 1")
        _check_congestion_control(self.congestion_control)
        if not 0.001 <= self.initial_rtt <= 60.0:
            raise ConfigurationError("initial_rtt", "must be within [1 ms, 60 s]")
        if not 2 <= self.active_connection_id_limit <= 64:
            # RFC 9000 §18.2: at least 2; our own bound keeps the CID table small.
            raise ConfigurationError("active_connection_id_limit", "must be within [2, 64]")
        if not 4 <= self.connection_id_length <= 20:
            # RFC 9000 §17.2: at most 20; below 4 bytes CIDs are too guessable to route on.
            raise ConfigurationError("connection_id_length", "must be within [4, 20]")
        if self.connection_id_generator is not None:
            sample = self.connection_id_generator()
            if not isinstance(sample, bytes) or len(sample) != self.connection_id_length:
                raise ConfigurationError(
                    "connection_id_generator",
                    f"must return connection_id_length ({self.connection_id_length}) bytes")
        if not 0 <= self.ack_delay_exponent <= 20:
            raise ConfigurationError("ack_delay_exponent", "must be within [0, 20] (§18.2)")
        if not 0.0 <= self.max_ack_delay < MAX_ACK_DELAY_LIMIT:
            raise ConfigurationError("max_ack_delay", "must be within [0, 16.384) s (§18.2)")
        if self.min_ack_delay is not None and not 0.0 <= self.min_ack_delay <= self.max_ack_delay:
            raise ConfigurationError("min_ack_delay", "must be within [0, max_ack_delay]")
        if not MIN_UDP_PAYLOAD <= self.max_udp_payload_size <= MAX_UDP_PAYLOAD:
            raise ConfigurationError("max_udp_payload_size", "must be within [1200, 65527]")
        if self.send_buffer_size < 1:
            raise ConfigurationError("send_buffer_size", "must be positive")
        if len(self.token) > 0xFFFF:
            raise ConfigurationError("token", "too long")
        if len(self.token_key) != 32:
            raise ConfigurationError("token_key", "must be 32 bytes")
        if len(self.stateless_reset_key) < 16:
            raise ConfigurationError("stateless_reset_key", "must be at least 16 bytes")
        if self.max_path_id is not None and not 0 <= self.max_path_id < (1 << 32):
            raise ConfigurationError("max_path_id", "must be within [0, 2^32-1]")
        _check_multipath(self)
        for name, version in (("preferred_address_v4", 4), ("preferred_address_v6", 6)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _parse_preferred(name, value, version,
                                                                self.is_client))
        if self.enable_early_data and not self.is_client and self.ticket_store is None:
            raise ConfigurationError("enable_early_data", "a server needs a ticket_store for 0-RTT")


def _parse_preferred(name: str, value: object, version: int,
                     is_client: bool) -> tuple[str, int]:
    """(host, port) of a preferred address; ``"host:port"`` / ``"[v6]:port"`` accepted."""
    import ipaddress

    if is_client:
        # RFC 9000 §18.2: only a server sends preferred_address.
        raise ConfigurationError(name, "only a server has a preferred address (RFC 9000 §18.2)")
    if isinstance(value, str):
        host, sep, port_text = value.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ConfigurationError(name, f"expected HOST:PORT, got {value!r}")
        value = (host.strip("[]"), int(port_text))
    if (not isinstance(value, tuple) or len(value) != 2 or not isinstance(value[0], str)
            or not isinstance(value[1], int) or isinstance(value[1], bool)):
        raise ConfigurationError(name, f"expected (host, port), got {value!r}")
    host, port = value
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigurationError(name, f"{host!r} is not an IP address") from None
    if address.version != version:
        raise ConfigurationError(name, f"{host} is not an IPv{version} address")
    if address.is_unspecified or address.is_multicast:
        # §18.2: an all-zero address means "none"; a client cannot move to either.
        raise ConfigurationError(name, f"{host} cannot be a preferred address")
    if not 1 <= port <= 65535:
        raise ConfigurationError(name, f"port {port} is not within [1, 65535]")
    return str(address), port


def _check_alpn(protocols: tuple[str, ...]) -> None:
    if not isinstance(protocols, tuple):
        raise ConfigurationError("alpn_protocols", "must be a tuple of strings")
    for proto in protocols:
        if not isinstance(proto, str) or not 0 < len(proto.encode()) <= 255:
            # RFC 7301 §3.1: each protocol name is 1..255 bytes.
            raise ConfigurationError("alpn_protocols", f"invalid protocol name {proto!r}")


def _check_versions(versions: tuple[int, ...]) -> None:
    if not versions:
        raise ConfigurationError("versions", "at least one version is needed")
    for version in versions:
        if version not in SUPPORTED_VERSIONS:
            raise ConfigurationError("versions", f"unsupported version {version:#x}")
    if len(set(versions)) != len(versions):
        raise ConfigurationError("versions", "duplicate version")


def _parse_cipher_suites(values: object) -> tuple[CipherSuite, ...]:
    if not isinstance(values, tuple | list) or not values:
        raise ConfigurationError("cipher_suites", "must be a non-empty tuple (or None)")
    by_name = {suite.name: suite for suite in CipherSuite}
    suites: list[CipherSuite] = []
    for value in values:
        suite: CipherSuite | None = None
        if isinstance(value, CipherSuite):
            suite = value
        elif isinstance(value, int) and not isinstance(value, bool):
            suite = CipherSuite(value) if value in CipherSuite._value2member_map_ else None
        elif isinstance(value, str):
            suite = by_name.get(value.upper().removeprefix("TLS_"))
        if suite is None:
            raise ConfigurationError(
                "cipher_suites", f"unsupported cipher suite {value!r}; choose from "
                f"{', '.join(by_name)}")
        if suite in suites:
            raise ConfigurationError("cipher_suites", f"duplicate {suite.name}")
        suites.append(suite)
    return tuple(suites)


def _check_congestion_control(name: str) -> None:
    from tquic.cc.base import available_controllers

    choices = available_controllers()
    if choices and name.lower() not in choices:
        raise ConfigurationError(
            "congestion_control", f"unknown controller {name!r}; choose one of {choices}"
        )


def _check_multipath(c: QuicConfiguration) -> None:
    from tquic.paths.schedulers import available_schedulers

    if c.scheduler.lower() not in available_schedulers():
        raise ConfigurationError(
            "scheduler", f"unknown scheduler {c.scheduler!r}; choose one of "
            f"{available_schedulers()}")
    if c.failover_pto_count < 1:
        raise ConfigurationError("failover_pto_count", "must be at least 1")
    if c.backup_keepalive is not None and not 0.01 <= c.backup_keepalive <= 600:
        raise ConfigurationError("backup_keepalive", "must be within [0.01, 600] s or None")
    if not isinstance(c.path_congestion_control, tuple):
        raise ConfigurationError("path_congestion_control", "must be a tuple of (path_id, name)")
    for item in c.path_congestion_control:
        if (not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], int)
                or not isinstance(item[1], str) or item[0] < 0):
            raise ConfigurationError("path_congestion_control",
                                     f"entries are (path_id, controller name), got {item!r}")
        try:
            _check_congestion_control(item[1])
        except ConfigurationError as exc:
            raise ConfigurationError("path_congestion_control", exc.reason) from None

"""TLS 1.3 client handshake for QUIC (RFC 9846 §4, RFC 9001 §4 and §8).

States (RFC 9846 Appendix A.1): WAIT_SH → WAIT_EE → [WAIT_CERT_CR → WAIT_CERT →
WAIT_CV] → WAIT_FINISHED → CONNECTED.  Messages are accepted only in their
state and epoch; anything else is unexpected_message.
"""

from __future__ import annotations

import hashlib
import os
from enum import Enum, auto

from tquic.crypto.keys import CipherSuite, suite_hash_name
from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
from tquic.crypto.tls.config import QUIC_MAX_EARLY_DATA, Epoch, SessionTicket, TlsConfig
from tquic.crypto.tls.endpoint import (
    TlsEndpoint,
    check_response_extensions,
    ext_map,
    illegal,
    unexpected,
)
from tquic.crypto.tls.extensions import (
    TLS13,
    ExtensionType,
    PskIdentity,
    PskKeyExchangeMode,
    encode_alpn,
    encode_cookie,
    encode_key_share_ch,
    encode_psk_binders,
    encode_psk_identities,
    encode_server_name,
    encode_supported_versions_ch,
    encode_u16_list,
    parse_alpn,
    parse_cookie,
    parse_empty,
    parse_key_share_sh,
    parse_max_early_data,
    parse_u16_body,
    parse_u16_list,
)
from tquic.crypto.tls.kex import KeyExchange, NamedGroup
from tquic.crypto.tls.key_schedule import KeySchedule, finished_verify_data, resumption_psk
from tquic.crypto.tls.messages import (
    LEGACY_VERSION,
    Certificate,
    CertificateEntry,
    CertificateVerify,
    ClientHello,
    Finished,
    HandshakeType,
    ServerHello,
    parse_certificate,
    parse_certificate_request,
    parse_encrypted_extensions,
    parse_new_session_ticket,
    parse_server_hello,
)
from tquic.crypto.tls.signatures import (
    certificate_verify_content,
    choose_scheme,
    sign,
)
from tquic.crypto.tls.verify import load_peer_chain, load_trust_store, verify_server_chain
from tquic.wire.errors import TransportErrorCode

__all__ = ["TlsClient"]

# RFC 9846 §4.1.3: last 8 bytes of ServerHello.random when a TLS 1.3 server
# negotiates TLS 1.2 or below.
DOWNGRADE_SENTINELS = (bytes.fromhex("444f574e47524401"), bytes.fromhex("444f574e47524400"))

_EE_ALLOWED = {
    ExtensionType.server_name,
    ExtensionType.supported_groups,
    ExtensionType.application_layer_protocol_negotiation,
    ExtensionType.early_data,
    ExtensionType.quic_transport_parameters,
}


class _State(Enum):
    START = auto()
    WAIT_SH = auto()
    WAIT_EE = auto()
    WAIT_CERT_CR = auto()
    WAIT_CERT = auto()
    WAIT_CV = auto()
    WAIT_FINISHED = auto()
    CONNECTED = auto()


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class TlsClient(TlsEndpoint):
    """The client side: ``start()``, then ``receive()`` server bytes per epoch."""

    def __init__(self, config: TlsConfig, transport_parameters: bytes) -> None:
        if not config.is_client:
            raise ValueError("TlsClient needs a client TlsConfig (is_client=True)")
        super().__init__(config, transport_parameters)
        self._state = _State.START
        self._key_shares: dict[int, KeyExchange] = {}
        self._sent_extensions: set[int] = set()
        self._hrr_suite: int | None = None
        self._hrr_group: int | None = None
        self._ticket: SessionTicket | None = None
        self._early_data_offered = False
        self._cert_requested = False
        self._cert_request_schemes: tuple[int, ...] = ()
        self._server_hs_secret = b""
        self._client_hs_secret = b""
        self._resumption_secret = b""
        self.new_session_tickets: list[SessionTicket] = []

    # -- ClientHello -----------------------------------------------------------

    def start(self) -> None:
        """Queue the ClientHello (and the 0-RTT write secret when resuming with early data)."""
        if self._state is not _State.START:
            raise RuntimeError("start() called twice")
        cfg = self._config
        self._client_random = os.urandom(32)
        now = cfg.clock()
        ticket = cfg.session_ticket
        if (
            ticket is not None
            and ticket.is_valid_at(now)
            and ticket.server_name == cfg.server_name
            and ticket.cipher_suite in cfg.cipher_suites
        ):
            self._ticket = ticket
        self._early_data_offered = bool(
            self._ticket is not None
            and cfg.enable_early_data
            and self._ticket.allows_early_data
            and self._ticket.alpn_protocol in cfg.alpn_protocols
        )
        group = cfg.groups[0]
        self._key_shares = {group: KeyExchange(group)}
        ch = self._build_client_hello(cookie=None)
        self._send(Epoch.INITIAL, ch)
        self._state = _State.WAIT_SH
        if self._early_data_offered and self._ticket is not None:
            # RFC 9001 §4.1.4: the 0-RTT write key is ready right after the ClientHello.
            ks = KeySchedule(self._ticket.cipher_suite, self._ticket.psk)
            secret = ks.client_early_traffic_secret(
                self._transcript.digest(suite_hash_name(self._ticket.cipher_suite))
            )
            self._install(Epoch.ZERO_RTT, True, self._ticket.cipher_suite, secret)
            self._log_secret(Epoch.ZERO_RTT, True, secret)

    def _build_client_hello(self, cookie: bytes | None) -> bytes:
        cfg = self._config
        exts: list[tuple[int, bytes]] = []
        # RFC 6066 §3: literal IP addresses are not sent as server_name.
        if cfg.server_name is not None and not _is_ip(cfg.server_name):
            exts.append((ExtensionType.server_name, encode_server_name(cfg.server_name)))
        exts += [
            (ExtensionType.supported_versions, encode_supported_versions_ch((TLS13,))),
            (ExtensionType.supported_groups, encode_u16_list(tuple(cfg.groups))),
            (ExtensionType.signature_algorithms, encode_u16_list(tuple(cfg.signature_algorithms))),
            (
                ExtensionType.key_share,
                encode_key_share_ch(
                    tuple((g, k.public_bytes) for g, k in self._key_shares.items())
                ),
            ),
            (ExtensionType.application_layer_protocol_negotiation, encode_alpn(cfg.alpn_protocols)),
            (ExtensionType.quic_transport_parameters, self._transport_parameters),
            # RFC 9846 §4.2.9: we only ever resume with (EC)DHE.
            (ExtensionType.psk_key_exchange_modes, bytes((1, PskKeyExchangeMode.psk_dhe_ke))),
        ]
        if cookie is not None:
            exts.append((ExtensionType.cookie, encode_cookie(cookie)))
        if self._early_data_offered and self._hrr_suite is None:
            exts.append((ExtensionType.early_data, b""))
        ticket = self._ticket
        if ticket is None:
            ch = self._client_hello(exts)
            self._sent_extensions = {t for t, _ in exts}
            return ch
        # RFC 9846 §4.2.11: pre_shared_key is last; the binder is an HMAC over
        # the ClientHello truncated before the binders list (§4.2.11.2).
        hash_name = suite_hash_name(ticket.cipher_suite)
        hash_len = hashlib.new(hash_name).digest_size
        age_ms = int((cfg.clock() - ticket.received_at) * 1000)
        identity = PskIdentity(ticket.ticket, (age_ms + ticket.ticket_age_add) % (1 << 32))
        identities = encode_psk_identities((identity,))
        placeholder = encode_psk_binders((bytes(hash_len),))
        exts.append((ExtensionType.pre_shared_key, identities + placeholder))
        self._sent_extensions = {t for t, _ in exts}
        partial = self._client_hello(exts)
        truncated = partial[: len(partial) - len(placeholder)]
        binder_key = KeySchedule(ticket.cipher_suite, ticket.psk).binder_key()
        binder = finished_verify_data(
            hash_name, binder_key, self._transcript.digest(hash_name, truncated)
        )
        exts[-1] = (ExtensionType.pre_shared_key, identities + encode_psk_binders((binder,)))
        return self._client_hello(exts)

    def _client_hello(self, exts: list[tuple[int, bytes]]) -> bytes:
        return ClientHello(
            LEGACY_VERSION,
            self._client_random,
            b"",  # RFC 9001 §8.4: no middlebox compatibility mode.
            tuple(self._config.cipher_suites),
            b"\x00",
            tuple(exts),
        ).encode()

    # -- dispatch ----------------------------------------------------------------

    def _handle(self, epoch: Epoch, msg_type: int, message: bytes) -> None:
        body = message[4:]
        state = self._state
        if state is _State.WAIT_SH and msg_type == HandshakeType.server_hello:
            self._expect_epoch(epoch, Epoch.INITIAL, msg_type)
            self._on_server_hello(message, parse_server_hello(body))
        elif state is _State.WAIT_EE and msg_type == HandshakeType.encrypted_extensions:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_encrypted_extensions(message, body)
        elif state is _State.WAIT_CERT_CR and msg_type == HandshakeType.certificate_request:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_certificate_request(message, body)
        elif (
            state in (_State.WAIT_CERT_CR, _State.WAIT_CERT)
            and msg_type == HandshakeType.certificate
        ):
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_certificate(message, body)
        elif state is _State.WAIT_CV and msg_type == HandshakeType.certificate_verify:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_certificate_verify(message, body)
        elif state is _State.WAIT_FINISHED and msg_type == HandshakeType.finished:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_finished(message, body)
        elif state is _State.CONNECTED and msg_type == HandshakeType.new_session_ticket:
            self._expect_epoch(epoch, Epoch.ONE_RTT, msg_type)
            self._on_new_session_ticket(body)
        else:
            raise unexpected(f"handshake message type {msg_type} in state {state.name}")

    # -- ServerHello / HelloRetryRequest (RFC 9846 §4.1.3, §4.1.4) --------------

    def _check_hello_common(self, sh: ServerHello) -> None:
        if sh.legacy_version != LEGACY_VERSION:
            raise TlsAlert(
                AlertDescription.protocol_version, "ServerHello legacy_version != 0x0303"
            )
        if sh.legacy_session_id_echo != b"":
            raise illegal("legacy_session_id_echo does not match ours (empty)")
        if sh.cipher_suite not in self._config.cipher_suites:
            raise illegal(f"server chose cipher suite {sh.cipher_suite:#06x} we did not offer")
        if sh.compression_method != 0:
            raise illegal("legacy_compression_method != 0")
        exts = ext_map(sh.extensions)
        if ExtensionType.supported_versions not in exts:
            # A TLS 1.2 (or older) ServerHello: RFC 9846 §4.1.3 downgrade check first.
            if sh.random[-8:] in DOWNGRADE_SENTINELS:
                raise illegal("downgrade sentinel in ServerHello.random")
            raise TlsAlert(AlertDescription.protocol_version, "server does not speak TLS 1.3")
        version = parse_u16_body(exts[ExtensionType.supported_versions], "selected_version")
        if version != TLS13:
            # RFC 9846 §4.2.1: a version we did not offer.
            raise illegal(f"server selected version {version:#06x}")

    def _on_server_hello(self, message: bytes, sh: ServerHello) -> None:
        self._check_hello_common(sh)
        if sh.is_hello_retry_request:
            self._on_hello_retry_request(message, sh)
            return
        if sh.random[-8:] in DOWNGRADE_SENTINELS:
            raise illegal("downgrade sentinel in ServerHello.random")
        check_response_extensions(
            sh.extensions,
            self._sent_extensions,
            {
                ExtensionType.supported_versions,
                ExtensionType.key_share,
                ExtensionType.pre_shared_key,
            },
            "ServerHello",
        )
        exts = ext_map(sh.extensions)
        suite = CipherSuite(sh.cipher_suite)
        if self._hrr_suite is not None and suite != self._hrr_suite:
            raise illegal("ServerHello cipher suite differs from the HelloRetryRequest's")
        psk: bytes | None = None
        if ExtensionType.pre_shared_key in exts:
            selected = parse_u16_body(exts[ExtensionType.pre_shared_key], "selected_identity")
            ticket = self._ticket
            if ticket is None or selected != 0:
                raise illegal(f"selected_identity {selected} out of range")
            if suite_hash_name(suite) != suite_hash_name(ticket.cipher_suite):
                raise illegal("cipher suite hash does not match the PSK's")
            psk = ticket.psk
        if ExtensionType.key_share not in exts:
            # RFC 9846 §4.2.11: psk_dhe_ke requires the server key_share.
            if psk is not None:
                raise illegal("no key_share with psk_dhe_ke")
            raise TlsAlert(AlertDescription.missing_extension, "ServerHello without key_share")
        group, peer_share = parse_key_share_sh(exts[ExtensionType.key_share])
        kex = self._key_shares.get(group)
        if kex is None:
            raise illegal(f"server key share for group {group:#06x} we did not send")
        shared = kex.exchange(peer_share)
        self._key_shares = {}

        self.cipher_suite = suite
        self.session_resumed = psk is not None
        ks = self._ks = KeySchedule(suite, psk)
        self._transcript.add(message)
        ks.enter_handshake(shared)
        c_hs, s_hs = ks.handshake_traffic_secrets(self._transcript.digest(ks.hash_name))
        self._client_hs_secret, self._server_hs_secret = c_hs, s_hs
        self._install(Epoch.HANDSHAKE, False, suite, s_hs)
        self._install(Epoch.HANDSHAKE, True, suite, c_hs)
        self._log_secret(Epoch.HANDSHAKE, True, c_hs)
        self._log_secret(Epoch.HANDSHAKE, False, s_hs)
        self._leave_epoch(Epoch.INITIAL)
        self._state = _State.WAIT_EE

    def _on_hello_retry_request(self, message: bytes, hrr: ServerHello) -> None:
        if self._hrr_suite is not None:
            raise unexpected("second HelloRetryRequest")
        # RFC 9846 §4.1.4: only extensions we offered, plus cookie.
        check_response_extensions(
            hrr.extensions,
            self._sent_extensions | {ExtensionType.cookie},
            {ExtensionType.supported_versions, ExtensionType.key_share, ExtensionType.cookie},
            "HelloRetryRequest",
        )
        exts = ext_map(hrr.extensions)
        cookie = parse_cookie(exts[ExtensionType.cookie]) if ExtensionType.cookie in exts else None
        if ExtensionType.key_share in exts:
            group = parse_u16_body(exts[ExtensionType.key_share], "selected_group")
            if group not in self._config.groups or group in self._key_shares:
                raise illegal(f"HelloRetryRequest selected group {group:#06x}")
            self._key_shares = {group: KeyExchange(NamedGroup(group))}
            self._hrr_group = group
        elif cookie is None:
            raise illegal("HelloRetryRequest would not change the ClientHello")
        suite = CipherSuite(hrr.cipher_suite)
        self._hrr_suite = suite
        # RFC 9846 §4.4.1: ClientHello1 becomes message_hash, then the HRR.
        self._transcript.replace_with_message_hash(suite_hash_name(suite))
        self._transcript.add(message)
        # RFC 9846 §4.1.4: no early_data after HRR (0-RTT is rejected, RFC 9001
        # §4.6.2); keep the PSK only if its hash matches the chosen suite.
        if self._ticket is not None and suite_hash_name(
            self._ticket.cipher_suite
        ) != suite_hash_name(suite):
            self._ticket = None
        self._leave_epoch(Epoch.INITIAL)
        self._send(Epoch.INITIAL, self._build_client_hello(cookie))

    # -- server parameters (RFC 9846 §4.3) ----------------------------------------

    def _on_encrypted_extensions(self, message: bytes, body: bytes) -> None:
        ee = parse_encrypted_extensions(body)
        check_response_extensions(
            ee.extensions, self._sent_extensions, _EE_ALLOWED, "EncryptedExtensions"
        )
        exts = ext_map(ee.extensions)
        if ExtensionType.server_name in exts:
            parse_empty(exts[ExtensionType.server_name], "server_name")
        if ExtensionType.supported_groups in exts:
            parse_u16_list(exts[ExtensionType.supported_groups], "supported_groups")
        alpn_data = exts.get(ExtensionType.application_layer_protocol_negotiation)
        if alpn_data is None:
            # RFC 9001 §8.1: the client closes with no_application_protocol too.
            raise TlsAlert(AlertDescription.no_application_protocol, "server selected no ALPN")
        names = parse_alpn(alpn_data)
        if len(names) != 1:
            raise illegal("server ALPN must name exactly one protocol")
        try:
            alpn = names[0].decode()
        except UnicodeDecodeError:
            alpn = ""
        if alpn not in self._config.alpn_protocols:
            raise TlsAlert(
                AlertDescription.no_application_protocol, "server chose an ALPN we did not offer"
            )
        self.alpn_protocol = alpn
        tp = exts.get(ExtensionType.quic_transport_parameters)
        if tp is None:
            # RFC 9001 §8.2.
            raise TlsAlert(AlertDescription.missing_extension, "no quic_transport_parameters")
        self.peer_transport_parameters = tp
        if ExtensionType.early_data in exts:
            parse_empty(exts[ExtensionType.early_data], "early_data")
            ticket = self._ticket
            # RFC 9846 §4.2.10: accepted 0-RTT must use the first PSK, with its
            # suite and ALPN.
            if ticket is None or not self.session_resumed or self._hrr_suite is not None:
                raise illegal("early_data accepted without the PSK")
            if self.cipher_suite != ticket.cipher_suite or alpn != ticket.alpn_protocol:
                raise illegal("0-RTT accepted with a different suite or ALPN")
            self.early_data_accepted = True
        self._transcript.add(message)
        self._state = _State.WAIT_FINISHED if self.session_resumed else _State.WAIT_CERT_CR

    def _on_certificate_request(self, message: bytes, body: bytes) -> None:
        cr = parse_certificate_request(body)
        if cr.context:
            # RFC 9846 §4.3.2: zero length in the main handshake.
            raise illegal("certificate_request_context must be empty")
        exts = ext_map(cr.extensions)
        if ExtensionType.signature_algorithms not in exts:
            raise TlsAlert(
                AlertDescription.missing_extension,
                "CertificateRequest without signature_algorithms",
            )
        self._cert_request_schemes = parse_u16_list(
            exts[ExtensionType.signature_algorithms], "signature_algorithms"
        )
        self._cert_requested = True
        self._transcript.add(message)
        self._state = _State.WAIT_CERT

    # -- server authentication (RFC 9846 §4.4) --------------------------------------

    def _on_certificate(self, message: bytes, body: bytes) -> None:
        cert_msg = parse_certificate(body)
        if cert_msg.context:
            raise illegal("server Certificate with a request context")
        if not cert_msg.entries:
            # RFC 9846 §4.4.2.4.
            raise TlsAlert(AlertDescription.decode_error, "empty server Certificate")
        chain = load_peer_chain(cert_msg)
        cfg = self._config
        if cfg.verify_peer:
            if cfg.server_name is None:  # pragma: no cover - TlsConfig forbids it
                raise TlsAlert(AlertDescription.internal_error, "no server_name to verify")
            store = load_trust_store(cfg.cafile, cfg.cadata)
            verify_server_chain(chain, cfg.server_name, store, cfg.clock())
        self.peer_certificate = chain[0]
        self.peer_certificate_chain = chain
        self._transcript.add(message)
        self._state = _State.WAIT_CV

    def _on_certificate_verify(self, message: bytes, body: bytes) -> None:
        self._check_peer_certificate_verify(
            message, body, True, tuple(self._config.signature_algorithms))
        self._state = _State.WAIT_FINISHED

    def _on_finished(self, message: bytes, body: bytes) -> None:
        ks = self._check_peer_finished(message, body, self._server_hs_secret, "server")
        suite = ks.suite
        ks.enter_main()
        c_ap, s_ap = ks.application_traffic_secrets(self._transcript.digest(ks.hash_name))
        self._install(Epoch.ONE_RTT, False, suite, s_ap)
        self._log_secret(Epoch.ONE_RTT, False, s_ap)
        # Client second flight (RFC 9846 §4.4): [Certificate, CertificateVerify], Finished.
        if self._cert_requested:
            self._send_client_certificate()
        verify_data = finished_verify_data(
            ks.hash_name, self._client_hs_secret, self._transcript.digest(ks.hash_name)
        )
        self._send(Epoch.HANDSHAKE, Finished(verify_data).encode())
        self._resumption_secret = ks.resumption_secret(self._transcript.digest(ks.hash_name))
        self._install(Epoch.ONE_RTT, True, suite, c_ap)
        self._log_secret(Epoch.ONE_RTT, True, c_ap)
        self._leave_epoch(Epoch.HANDSHAKE)
        self.handshake_complete = True
        self._state = _State.CONNECTED

    def _send_client_certificate(self) -> None:
        cfg = self._config
        ks = self._ks
        key = cfg.private_key
        scheme = None
        if key is not None and cfg.certificate_chain:
            scheme = choose_scheme(
                key,
                cfg.certificate_chain[0].public_key_algorithm_oid,
                self._cert_request_schemes,
                tuple(cfg.signature_algorithms),
            )
        if key is None or scheme is None or ks is None:
            # RFC 9846 §4.4.2: no suitable certificate → an empty Certificate.
            self._send(Epoch.HANDSHAKE, Certificate(b"", ()).encode())
            return
        from cryptography.hazmat.primitives.serialization import Encoding

        entries = tuple(
            CertificateEntry(c.public_bytes(Encoding.DER), ()) for c in cfg.certificate_chain
        )
        self._send(Epoch.HANDSHAKE, Certificate(b"", entries).encode())
        content = certificate_verify_content(False, self._transcript.digest(ks.hash_name))
        self._send(Epoch.HANDSHAKE, CertificateVerify(scheme, sign(key, scheme, content)).encode())

    # -- post-handshake (RFC 9846 §4.6.1, RFC 9001 §4.6.1) -------------------------

    def _on_new_session_ticket(self, body: bytes) -> None:
        nst = parse_new_session_ticket(body)
        ks = self._ks
        suite = self.cipher_suite
        if ks is None or suite is None:  # pragma: no cover
            raise unexpected("NewSessionTicket before the handshake")
        if nst.ticket_lifetime > 604800:
            raise illegal("ticket_lifetime over 7 days")
        max_early = 0
        for ext_type, data in nst.extensions:
            if ext_type == ExtensionType.early_data:
                max_early = parse_max_early_data(data)
                if max_early != QUIC_MAX_EARLY_DATA:
                    # RFC 9001 §4.6.1: PROTOCOL_VIOLATION.
                    raise TlsAlert(
                        AlertDescription.illegal_parameter,
                        "max_early_data_size must be 0xffffffff in QUIC",
                        error_code=TransportErrorCode.PROTOCOL_VIOLATION,
                    )
            # Other extensions are ignored (RFC 9846 §4.6.1).
        if nst.ticket_lifetime == 0:
            return  # "the ticket should be discarded immediately"
        self.new_session_tickets.append(
            SessionTicket(
                ticket=nst.ticket,
                psk=resumption_psk(ks.hash_name, self._resumption_secret, nst.ticket_nonce),
                cipher_suite=suite,
                server_name=self._config.server_name,
                alpn_protocol=self.alpn_protocol,
                ticket_age_add=nst.ticket_age_add,
                lifetime=nst.ticket_lifetime,
                received_at=self._config.clock(),
                max_early_data=max_early,
                peer_transport_parameters=self.peer_transport_parameters,
            )
        )

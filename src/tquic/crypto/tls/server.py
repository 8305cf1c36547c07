"""TLS 1.3 server handshake for QUIC (RFC 9846 §4, RFC 9001 §4 and §8).

States (RFC 9846 Appendix A.2): WAIT_CH (→ HelloRetryRequest → WAIT_CH again)
→ [WAIT_CERT → WAIT_CV] → WAIT_FINISHED → CONNECTED.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable
from enum import Enum, auto

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tquic.crypto.keys import CipherSuite, suite_hash_name
from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
from tquic.crypto.tls.config import QUIC_MAX_EARLY_DATA, Epoch, TlsConfig
from tquic.crypto.tls.endpoint import TlsEndpoint, ext_map, illegal, unexpected
from tquic.crypto.tls.extensions import (
    TLS13,
    ExtensionType,
    OfferedPsks,
    PskKeyExchangeMode,
    encode_alpn,
    encode_cookie,
    encode_key_share_entry,
    encode_psk_binders,
    encode_u16_list,
    parse_alpn,
    parse_cookie,
    parse_key_share_ch,
    parse_offered_psks,
    parse_psk_modes,
    parse_server_name,
    parse_supported_versions_ch,
    parse_u16_list,
)
from tquic.crypto.tls.kex import KeyExchange, NamedGroup
from tquic.crypto.tls.key_schedule import KeySchedule, finished_verify_data, resumption_psk
from tquic.crypto.tls.messages import (
    HRR_RANDOM,
    LEGACY_VERSION,
    Certificate,
    CertificateEntry,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    HandshakeType,
    NewSessionTicket,
    ServerHello,
    parse_certificate,
    parse_client_hello,
)
from tquic.crypto.tls.signatures import (
    SignatureScheme,
    certificate_verify_content,
    choose_scheme,
    sign,
)
from tquic.crypto.tls.tickets import TicketState, TicketStore
from tquic.crypto.tls.verify import load_peer_chain, load_trust_store, verify_client_chain
from tquic.wire.errors import TransportErrorCode

__all__ = ["TlsServer"]


class _State(Enum):
    WAIT_CH = auto()
    WAIT_CERT = auto()
    WAIT_CV = auto()
    WAIT_FINISHED = auto()
    CONNECTED = auto()


class TlsServer(TlsEndpoint):
    """The server side: ``receive()`` client bytes per epoch, ``pop_output()`` the answer.

    ``ticket_store`` enables session tickets and resumption (shared between
    connections).  ``early_data_check``, if set, is called with the
    ``app_data`` sealed in the ticket before 0-RTT is accepted (RFC 9001
    §4.6.3: QUIC or the application may refuse 0-RTT); ``ticket_app_data`` is
    what new tickets carry.  A server with ``require_client_cert`` issues no
    tickets and accepts no PSK: TLS 1.3 cannot request a certificate in a
    resumed handshake (RFC 9846 §4.3.2), and tickets do not record the client.
    """

    def __init__(
        self,
        config: TlsConfig,
        transport_parameters: bytes,
        ticket_store: TicketStore | None = None,
    ) -> None:
        if config.is_client:
            raise ValueError("TlsServer needs a server TlsConfig (is_client=False)")
        super().__init__(config, transport_parameters)
        self._ticket_store = ticket_store
        self._state = _State.WAIT_CH
        self._hrr_group: int | None = None
        self._hrr_suite: CipherSuite | None = None
        self._hrr_cookie = b""
        self._client_hs_secret = b""
        self._client_ap_secret = b""
        self._resumption_secret = b""
        self._cr_schemes: tuple[int, ...] = ()
        self._client_offered_psk_dhe = False
        self._ticket_nonce = 0
        self._server_name: str | None = None
        self.server_name: str | None = None
        self.ticket_app_data = b""
        self.resumed_app_data: bytes | None = None
        self.early_data_check: Callable[[bytes], bool] | None = None

    def start(self) -> None:
        """Nothing to do: the server speaks after the ClientHello (RFC 9001 §4.1.3)."""

    # -- dispatch ----------------------------------------------------------------

    def _handle(self, epoch: Epoch, msg_type: int, message: bytes) -> None:
        state = self._state
        body = message[4:]
        if state is _State.WAIT_CH and msg_type == HandshakeType.client_hello:
            self._expect_epoch(epoch, Epoch.INITIAL, msg_type)
            self._on_client_hello(message, parse_client_hello(body))
        elif state is _State.WAIT_CERT and msg_type == HandshakeType.certificate:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_certificate(message, body)
        elif state is _State.WAIT_CV and msg_type == HandshakeType.certificate_verify:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_certificate_verify(message, body)
        elif state is _State.WAIT_FINISHED and msg_type == HandshakeType.finished:
            self._expect_epoch(epoch, Epoch.HANDSHAKE, msg_type)
            self._on_finished(message, body)
        else:
            # Includes end_of_early_data, which QUIC removes (RFC 9001 §8.3).
            raise unexpected(f"handshake message type {msg_type} in state {state.name}")

    # -- ClientHello (RFC 9846 §4.1.2, §4.2, §9.2) ----------------------------------

    def _on_client_hello(self, message: bytes, ch: ClientHello) -> None:
        """Check the ClientHello, choose what to use, then answer with the server's
        flight -- or with a HelloRetryRequest when no offered key share fits."""
        exts = ext_map(ch.extensions)
        has_psk = _check_client_hello(ch, exts)
        if self._hrr_suite is not None:
            self._check_second_client_hello(exts)
        suite = self._choose_suite(ch)
        if ExtensionType.server_name in exts:
            self.server_name = parse_server_name(exts[ExtensionType.server_name])
        alpn = self._select_alpn(exts)
        client_groups, shares = _offered_key_shares(exts)
        client_schemes: tuple[int, ...] = ()
        if ExtensionType.signature_algorithms in exts:
            client_schemes = parse_u16_list(
                exts[ExtensionType.signature_algorithms], "signature_algorithms"
            )
        modes = b""
        if ExtensionType.psk_key_exchange_modes in exts:
            modes = parse_psk_modes(exts[ExtensionType.psk_key_exchange_modes])
        self._client_offered_psk_dhe = PskKeyExchangeMode.psk_dhe_ke in modes

        chosen = self._choose_key_share(shares)
        if chosen is None:
            self._send_hello_retry_request(message, suite, self._retry_group(client_groups))
            return
        psk, accept_early = self._resumption(message, exts, has_psk, suite, alpn)
        scheme = None if psk is not None else self._choose_scheme(client_schemes)

        kex = KeyExchange(chosen)
        shared = kex.exchange(shares[chosen])
        self._transcript.add(message)
        self._ks = KeySchedule(suite, psk)
        self.cipher_suite = suite
        self.session_resumed = psk is not None
        self.alpn_protocol = alpn
        self.peer_transport_parameters = exts[ExtensionType.quic_transport_parameters]
        self._client_random = ch.random
        if accept_early:
            self._accept_early_data(suite)
        self._send_server_hello(suite, chosen, kex.public_bytes, psk is not None)
        s_hs = self._enter_handshake(suite, shared)
        self._send_encrypted_extensions(alpn, accept_early)
        if scheme is not None:
            self._send_certificate(scheme)
        self._send_finished(suite, s_hs)

    def _choose_suite(self, ch: ClientHello) -> CipherSuite:
        """The server's preferred cipher suite among the client's offer."""
        suite = next((s for s in self._config.cipher_suites if s in ch.cipher_suites), None)
        if suite is None:
            raise TlsAlert(AlertDescription.handshake_failure, "no common cipher suite")
        if self._hrr_suite is not None and suite != self._hrr_suite:
            raise illegal("second ClientHello changes the cipher suite")
        return suite

    def _choose_key_share(self, shares: dict[int, bytes]) -> NamedGroup | None:
        """The server's preferred group among the offered key shares (RFC 9846
        §4.2.8), or None when a HelloRetryRequest must ask for another."""
        if self._hrr_group is not None and set(shares) != {self._hrr_group}:
            # RFC 9846 §4.2.8: after HRR, exactly one share, for the selected group.
            raise illegal("second ClientHello must carry only the requested key share")
        return next((g for g in self._config.groups if g in shares), None)

    def _retry_group(self, client_groups: tuple[int, ...]) -> int:
        """The group a HelloRetryRequest asks for (only one retry is allowed)."""
        wanted = next((g for g in self._config.groups if g in client_groups), None)
        if wanted is None:
            raise TlsAlert(AlertDescription.handshake_failure, "no common group")
        if self._hrr_suite is not None:
            raise illegal("second ClientHello lacks the key share asked for")
        return wanted

    def _resumption(
        self, message: bytes, exts: dict[int, bytes], has_psk: bool, suite: CipherSuite,
        alpn: str,
    ) -> tuple[bytes | None, bool]:
        """Resumption (RFC 9846 §4.2.11): the accepted PSK (binder checked) or None,
        and whether 0-RTT is accepted."""
        # RFC 9846 §4.3.2: no CertificateRequest in a PSK handshake, so a server
        # that requires client certificates never resumes (fail closed).
        if has_psk and self._client_offered_psk_dhe and not self._config.require_client_cert:
            offered = parse_offered_psks(exts[ExtensionType.pre_shared_key])
            return self._select_psk(
                message, offered, suite, alpn, ExtensionType.early_data in exts
            )
        if has_psk:
            parse_offered_psks(exts[ExtensionType.pre_shared_key])  # still must decode
        return None, False

    def _choose_scheme(self, client_schemes: tuple[int, ...]) -> SignatureScheme:
        """The signature scheme for CertificateVerify (full handshake only)."""
        cfg = self._config
        key = cfg.private_key
        if key is None:  # pragma: no cover - TlsConfig requires it for servers
            raise TlsAlert(AlertDescription.internal_error, "no server key")
        scheme = choose_scheme(
            key,
            cfg.certificate_chain[0].public_key_algorithm_oid,
            client_schemes,
            tuple(cfg.signature_algorithms),
        )
        if scheme is None:
            raise TlsAlert(AlertDescription.handshake_failure, "no common signature algorithm")
        return scheme

    def _key_schedule(self) -> KeySchedule:
        ks = self._ks
        if ks is None:  # pragma: no cover - set before any flight is sent
            raise TlsAlert(AlertDescription.internal_error, "no key schedule")
        return ks

    def _accept_early_data(self, suite: CipherSuite) -> None:
        # RFC 9846 §7.1: client_early_traffic_secret over the ClientHello.
        ks = self._key_schedule()
        early = ks.client_early_traffic_secret(self._transcript.digest(ks.hash_name))
        self._install(Epoch.ZERO_RTT, False, suite, early)
        self._log_secret(Epoch.ZERO_RTT, True, early)
        self.early_data_accepted = True

    def _send_server_hello(self, suite: CipherSuite, group: int, public: bytes,
                           resumed: bool) -> None:
        sh_exts: list[tuple[int, bytes]] = [
            (ExtensionType.supported_versions, TLS13.to_bytes(2, "big")),
            (ExtensionType.key_share, encode_key_share_entry(group, public)),
        ]
        if resumed:
            sh_exts.append((ExtensionType.pre_shared_key, (0).to_bytes(2, "big")))
        sh = ServerHello(LEGACY_VERSION, os.urandom(32), b"", suite, 0, tuple(sh_exts))
        self._send(Epoch.INITIAL, sh.encode())
        self._leave_epoch(Epoch.INITIAL)

    def _enter_handshake(self, suite: CipherSuite, shared: bytes) -> bytes:
        """Install the Handshake keys both ways; returns the server's handshake secret."""
        ks = self._key_schedule()
        ks.enter_handshake(shared)
        c_hs, s_hs = ks.handshake_traffic_secrets(self._transcript.digest(ks.hash_name))
        self._client_hs_secret = c_hs
        self._install(Epoch.HANDSHAKE, True, suite, s_hs)
        self._install(Epoch.HANDSHAKE, False, suite, c_hs)
        self._log_secret(Epoch.HANDSHAKE, True, c_hs)
        self._log_secret(Epoch.HANDSHAKE, False, s_hs)
        return s_hs

    def _send_encrypted_extensions(self, alpn: str, accept_early: bool) -> None:
        ee_exts: list[tuple[int, bytes]] = [
            (ExtensionType.application_layer_protocol_negotiation, encode_alpn((alpn,))),
            (ExtensionType.quic_transport_parameters, self._transport_parameters),
        ]
        if accept_early:
            ee_exts.append((ExtensionType.early_data, b""))
        self._send(Epoch.HANDSHAKE, EncryptedExtensions(tuple(ee_exts)).encode())

    def _send_certificate(self, scheme: SignatureScheme) -> None:
        """CertificateRequest (if client certificates are required), Certificate and
        CertificateVerify: the full handshake's authentication (RFC 9846 §4.4)."""
        cfg = self._config
        if cfg.require_client_cert:
            self._cr_schemes = tuple(cfg.signature_algorithms)
            cr = CertificateRequest(
                b"", ((ExtensionType.signature_algorithms, encode_u16_list(self._cr_schemes)),)
            )
            self._send(Epoch.HANDSHAKE, cr.encode())
        self._send(Epoch.HANDSHAKE, _certificate_message(cfg.certificate_chain))
        ks = self._key_schedule()
        content = certificate_verify_content(True, self._transcript.digest(ks.hash_name))
        signing_key = cfg.private_key
        if signing_key is None:  # pragma: no cover
            raise TlsAlert(AlertDescription.internal_error, "no server key")
        signature = sign(signing_key, scheme, content)
        self._send(Epoch.HANDSHAKE, CertificateVerify(scheme, signature).encode())

    def _send_finished(self, suite: CipherSuite, s_hs: bytes) -> None:
        """Finished, then the 1-RTT keys: send now, receive once the client's Finished
        is checked (RFC 9001 §4.1.4, figure)."""
        ks = self._key_schedule()
        verify_data = finished_verify_data(
            ks.hash_name, s_hs, self._transcript.digest(ks.hash_name)
        )
        self._send(Epoch.HANDSHAKE, Finished(verify_data).encode())
        ks.enter_main()
        c_ap, s_ap = ks.application_traffic_secrets(self._transcript.digest(ks.hash_name))
        self._client_ap_secret = c_ap
        self._install(Epoch.ONE_RTT, True, suite, s_ap)
        self._log_secret(Epoch.ONE_RTT, False, s_ap)
        self._log_secret(Epoch.ONE_RTT, True, c_ap)
        self._state = _State.WAIT_CERT if self._cr_schemes else _State.WAIT_FINISHED

    def _check_second_client_hello(self, exts: dict[int, bytes]) -> None:
        """RFC 9846 §4.1.2: after HRR, no early_data and the cookie echoed."""
        if ExtensionType.early_data in exts:
            raise illegal("early_data in the second ClientHello")
        cookie = exts.get(ExtensionType.cookie)
        if cookie is None or not hmac.compare_digest(parse_cookie(cookie), self._hrr_cookie):
            raise illegal("second ClientHello does not echo the cookie")

    def _select_alpn(self, exts: dict[int, bytes]) -> str:
        data = exts.get(ExtensionType.application_layer_protocol_negotiation)
        if data is None:
            # RFC 9001 §8.1: ALPN is mandatory in QUIC.
            raise TlsAlert(AlertDescription.no_application_protocol, "client offered no ALPN")
        offered = parse_alpn(data)
        for proto in self._config.alpn_protocols:
            if proto.encode() in offered:
                return proto
        raise TlsAlert(AlertDescription.no_application_protocol, "no common application protocol")

    def _send_hello_retry_request(self, message: bytes, suite: CipherSuite, group: int) -> None:
        self._hrr_suite = suite
        self._hrr_group = group
        self._hrr_cookie = os.urandom(32)
        hrr = ServerHello(
            LEGACY_VERSION,
            HRR_RANDOM,
            b"",
            suite,
            0,
            (
                (ExtensionType.supported_versions, TLS13.to_bytes(2, "big")),
                (ExtensionType.key_share, group.to_bytes(2, "big")),
                (ExtensionType.cookie, encode_cookie(self._hrr_cookie)),
            ),
        )
        self._transcript.add(message)
        self._transcript.replace_with_message_hash(suite_hash_name(suite))
        self._send(Epoch.INITIAL, hrr.encode())
        self._leave_epoch(Epoch.INITIAL)

    def _select_psk(
        self,
        message: bytes,
        offered: OfferedPsks,
        suite: CipherSuite,
        alpn: str,
        early_data_requested: bool,
    ) -> tuple[bytes | None, bool]:
        store = self._ticket_store
        if store is None:
            return None, False
        now = self._config.clock()
        for index, identity in enumerate(offered.identities):
            state = store.open(identity.identity)
            if state is None:
                continue  # RFC 9846 §4.2.11: unknown PSKs are ignored.
            if not 0 <= now - state.issued_at < state.lifetime:
                continue
            if suite_hash_name(state.cipher_suite) != suite_hash_name(suite):
                continue
            binder = offered.binders[index]
            ks = KeySchedule(suite, state.psk)
            if len(binder) != ks.hash_len:
                raise TlsAlert(AlertDescription.decrypt_error, "PSK binder has the wrong length")
            binders_len = len(encode_psk_binders(offered.binders))
            truncated = message[: len(message) - binders_len]
            expected = finished_verify_data(
                ks.hash_name, ks.binder_key(), self._transcript.digest(ks.hash_name, truncated)
            )
            if not hmac.compare_digest(expected, binder):
                raise TlsAlert(AlertDescription.decrypt_error, "PSK binder does not verify")
            self.resumed_app_data = state.app_data
            accept = (
                early_data_requested
                and index == 0
                and self._config.enable_early_data
                and self._hrr_suite is None
                and state.max_early_data == QUIC_MAX_EARLY_DATA
                and state.cipher_suite == suite
                and state.alpn_protocol == alpn
                and store.is_fresh(state, identity.obfuscated_ticket_age, now)
                and (self.early_data_check is None or self.early_data_check(state.app_data))
                and store.claim_early_data(identity.identity, now)
            )
            return state.psk, accept
        return None, False

    # -- client authentication (RFC 9846 §4.4.2, §4.4.3) --------------------------------

    def _on_certificate(self, message: bytes, body: bytes) -> None:
        cert_msg = parse_certificate(body)
        if cert_msg.context:
            raise illegal("client Certificate with a request context")
        cfg = self._config
        if not cert_msg.entries:
            if cfg.require_client_cert:
                raise TlsAlert(AlertDescription.certificate_required, "client sent no certificate")
            self._transcript.add(message)
            self._state = _State.WAIT_FINISHED
            return
        chain = load_peer_chain(cert_msg)
        if cfg.verify_peer:
            verify_client_chain(chain, load_trust_store(cfg.cafile, cfg.cadata), cfg.clock())
        self.peer_certificate = chain[0]
        self.peer_certificate_chain = chain
        self._transcript.add(message)
        self._state = _State.WAIT_CV

    def _on_certificate_verify(self, message: bytes, body: bytes) -> None:
        self._check_peer_certificate_verify(message, body, False, self._cr_schemes)
        self._state = _State.WAIT_FINISHED

    def _on_finished(self, message: bytes, body: bytes) -> None:
        ks = self._check_peer_finished(message, body, self._client_hs_secret, "client")
        self._resumption_secret = ks.resumption_secret(self._transcript.digest(ks.hash_name))
        self._install(Epoch.ONE_RTT, False, ks.suite, self._client_ap_secret)
        self._leave_epoch(Epoch.HANDSHAKE)
        self.handshake_complete = True
        self._state = _State.CONNECTED

    # -- tickets (RFC 9846 §4.6.1, RFC 9001 §4.6.1) --------------------------------------

    def send_session_ticket(self) -> bool:
        """Queue a NewSessionTicket in the 1-RTT epoch; False when tickets are not possible."""
        ks = self._ks
        store = self._ticket_store
        if (
            not self.handshake_complete
            or ks is None
            or store is None
            or self._failed is not None
            or not self._client_offered_psk_dhe
            or self.alpn_protocol is None
            or self._config.require_client_cert
        ):
            return False
        cfg = self._config
        nonce = self._ticket_nonce.to_bytes(8, "big")
        self._ticket_nonce += 1
        age_add = int.from_bytes(os.urandom(4), "big")
        allow_early = cfg.enable_early_data
        state = TicketState(
            cipher_suite=ks.suite,
            psk=resumption_psk(ks.hash_name, self._resumption_secret, nonce),
            issued_at=cfg.clock(),
            ticket_age_add=age_add,
            lifetime=cfg.ticket_lifetime,
            alpn_protocol=self.alpn_protocol,
            max_early_data=QUIC_MAX_EARLY_DATA if allow_early else 0,
            server_name=self.server_name,
            app_data=self.ticket_app_data,
        )
        exts: tuple[tuple[int, bytes], ...] = ()
        if allow_early:
            exts = ((ExtensionType.early_data, QUIC_MAX_EARLY_DATA.to_bytes(4, "big")),)
        nst = NewSessionTicket(cfg.ticket_lifetime, age_add, nonce, store.seal(state), exts)
        self._send(Epoch.ONE_RTT, nst.encode(), transcript=False)
        return True


def _check_client_hello(ch: ClientHello, exts: dict[int, bytes]) -> bool:
    """The ClientHello's structure: TLS 1.3 offered, no compatibility mode, the
    mandatory extensions present (RFC 9846 §4.1.2, §9.2; RFC 9001 §8).  Returns
    whether it offers a PSK."""
    if ExtensionType.supported_versions not in exts:
        raise TlsAlert(AlertDescription.protocol_version, "client does not offer TLS 1.3")
    if TLS13 not in parse_supported_versions_ch(exts[ExtensionType.supported_versions]):
        raise TlsAlert(AlertDescription.protocol_version, "client does not offer TLS 1.3")
    if ch.compression_methods != b"\x00":
        raise illegal("legacy_compression_methods must be exactly [null]")
    if ch.legacy_session_id:
        # RFC 9001 §8.4: no compatibility mode in QUIC → PROTOCOL_VIOLATION.
        raise TlsAlert(
            AlertDescription.illegal_parameter,
            "non-empty legacy_session_id",
            error_code=TransportErrorCode.PROTOCOL_VIOLATION,
        )
    if (
        ch.extensions[-1][0] != ExtensionType.pre_shared_key
        and ExtensionType.pre_shared_key in exts
    ):
        raise illegal("pre_shared_key is not the last extension")
    has_psk = ExtensionType.pre_shared_key in exts
    # RFC 9846 §9.2 "Mandatory-to-Implement Extensions".
    if not has_psk and (
        ExtensionType.signature_algorithms not in exts
        or ExtensionType.supported_groups not in exts
    ):
        raise TlsAlert(
            AlertDescription.missing_extension,
            "signature_algorithms and supported_groups required",
        )
    if (ExtensionType.supported_groups in exts) != (ExtensionType.key_share in exts):
        raise TlsAlert(
            AlertDescription.missing_extension, "supported_groups and key_share go together"
        )
    if has_psk and ExtensionType.psk_key_exchange_modes not in exts:
        raise TlsAlert(
            AlertDescription.missing_extension, "pre_shared_key without psk_key_exchange_modes"
        )
    if ExtensionType.quic_transport_parameters not in exts:
        raise TlsAlert(
            AlertDescription.missing_extension, "no quic_transport_parameters (RFC 9001 §8.2)"
        )
    return has_psk


def _offered_key_shares(exts: dict[int, bytes]) -> tuple[tuple[int, ...], dict[int, bytes]]:
    """The client's supported groups and its key shares by group (RFC 9846 §4.2.7,
    §4.2.8): each share once, each for a supported group."""
    client_groups: tuple[int, ...] = ()
    shares: dict[int, bytes] = {}
    if ExtensionType.supported_groups in exts:
        client_groups = parse_u16_list(exts[ExtensionType.supported_groups], "supported_groups")
        for share_group, share in parse_key_share_ch(exts[ExtensionType.key_share]):
            if share_group in shares or share_group not in client_groups:
                raise illegal(
                    f"key share for group {share_group:#06x} duplicated or not in supported_groups"
                )
            shares[share_group] = share
    return client_groups, shares


@functools.lru_cache(maxsize=16)
def _certificate_message(chain: tuple[x509.Certificate, ...]) -> bytes:
    """The server's Certificate message (empty context, no extensions: RFC 9846 §4.4.2),
    the same bytes for every handshake: encoded once per chain."""
    entries = tuple(CertificateEntry(c.public_bytes(Encoding.DER), ()) for c in chain)
    return Certificate(b"", entries).encode()

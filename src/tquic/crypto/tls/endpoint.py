"""What the TLS client and server share: CRYPTO-stream framing per epoch,
output queues, secrets handed to QUIC, key logging and the fail-closed rule.

RFC 9001 §4.1.3: TLS buffers in-order handshake bytes until whole messages
are available; QUIC has no flow control for CRYPTO, so the buffer is bounded
(RFC 9000 §7.5: CRYPTO_BUFFER_EXCEEDED).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from cryptography import x509

from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
from tquic.crypto.tls.config import Epoch, TlsConfig, TrafficSecret
from tquic.crypto.tls.extensions import Extensions, ExtensionType
from tquic.crypto.tls.key_schedule import KeySchedule, Transcript, finished_verify_data
from tquic.crypto.tls.keylog import KeyLogger
from tquic.crypto.tls.messages import HandshakeType, parse_certificate_verify, parse_finished
from tquic.crypto.tls.signatures import (
    certificate_public_key,
    certificate_verify_content,
    verify_signature,
)
from tquic.wire.errors import TransportErrorCode

__all__ = ["MAX_BUFFERED", "TlsEndpoint"]

# Per-epoch bound on buffered handshake bytes (and so on one message).
MAX_BUFFERED = 64 * 1024

_KEYLOG_LABELS = {
    (Epoch.ZERO_RTT, True): "CLIENT_EARLY_TRAFFIC_SECRET",
    (Epoch.HANDSHAKE, True): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    (Epoch.HANDSHAKE, False): "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    (Epoch.ONE_RTT, True): "CLIENT_TRAFFIC_SECRET_0",
    (Epoch.ONE_RTT, False): "SERVER_TRAFFIC_SECRET_0",
}


def unexpected(reason: str) -> TlsAlert:
    return TlsAlert(AlertDescription.unexpected_message, reason)


def illegal(reason: str) -> TlsAlert:
    return TlsAlert(AlertDescription.illegal_parameter, reason)


def ext_map(exts: Extensions) -> dict[int, bytes]:
    return dict(exts)


def check_response_extensions(
    exts: Extensions, requested: Collection[int], allowed: Collection[int], what: str
) -> None:
    """RFC 9846 §4.2: a response extension the client did not request is
    unsupported_extension; a requested one not allowed in this message is
    illegal_parameter."""
    for ext_type, _ in exts:
        if ext_type not in requested:
            raise TlsAlert(
                AlertDescription.unsupported_extension,
                f"{what}: unsolicited extension {ext_type}",
            )
        if ext_type not in allowed:
            raise illegal(f"{what}: extension {ExtensionType(ext_type).name} not allowed here")


class TlsEndpoint:
    """Base of TlsClient and TlsServer (not used directly)."""

    def __init__(self, config: TlsConfig, transport_parameters: bytes) -> None:
        self._config = config
        self._transport_parameters = transport_parameters
        # One buffer per epoch that received bytes, made on first use (a comprehension
        # over the Epoch enum was ~1 % of a server's handshake CPU).
        self._buffers: dict[Epoch, bytearray] = {}
        self._output: list[tuple[Epoch, bytearray]] = []
        self._secrets: list[TrafficSecret] = []
        self._keylog = KeyLogger(config.keylog_file, config.keylog_callback)
        self._transcript = Transcript()
        self._ks: KeySchedule | None = None
        self._client_random = b""
        self._failed: TlsAlert | None = None
        self.handshake_complete = False
        self.alpn_protocol: str | None = None
        self.peer_transport_parameters: bytes | None = None
        self.session_resumed = False
        self.early_data_accepted = False
        self.peer_certificate: x509.Certificate | None = None
        self.peer_certificate_chain: tuple[x509.Certificate, ...] = ()
        self.cipher_suite: CipherSuite | None = None

    # -- QUIC interface (RFC 9001 §4.1) --------------------------------------

    def receive(self, epoch: Epoch, data: bytes) -> None:
        """CRYPTO bytes, in order, for ``epoch``; processes every whole message."""
        if self._failed is not None:
            raise self._failed
        try:
            self._receive(epoch, data)
        except TlsAlert as alert:
            self._failed = alert
            raise
        except Exception as exc:
            # Fail closed: no other exception escapes, and the endpoint is dead.
            internal = TlsAlert(AlertDescription.internal_error, f"internal error: {exc!r}")
            self._failed = internal
            raise internal from exc

    # -- peer authentication, the same on both sides ---------------------------

    def _check_peer_certificate_verify(
        self, message: bytes, body: bytes, peer_is_server: bool, allowed: tuple[int, ...]
    ) -> None:
        """RFC 9846 §4.4.3: the peer's signature over the transcript so far, with its
        leaf certificate's key and a scheme we offered; bad → decrypt_error."""
        cv = parse_certificate_verify(body)
        leaf = self.peer_certificate
        ks = self._ks
        if leaf is None or ks is None:  # pragma: no cover - the state machine guarantees
            raise unexpected("CertificateVerify without Certificate")
        key, key_oid = certificate_public_key(leaf)
        content = certificate_verify_content(peer_is_server, self._transcript.digest(ks.hash_name))
        verify_signature(key, key_oid, cv.algorithm, allowed, content, cv.signature)
        self._transcript.add(message)

    def _check_peer_finished(self, message: bytes, body: bytes, base_key: bytes,
                             peer: str) -> KeySchedule:
        """RFC 9846 §4.4.4: the peer's Finished MAC over the transcript; a wrong one is
        decrypt_error.  Returns the key schedule for the caller's next step."""
        ks = self._ks
        if ks is None:  # pragma: no cover - the state machine guarantees
            raise unexpected("Finished before the key exchange")
        fin = parse_finished(body, ks.hash_len)
        expected = finished_verify_data(ks.hash_name, base_key,
                                        self._transcript.digest(ks.hash_name))
        if not hmac.compare_digest(expected, fin.verify_data):
            raise TlsAlert(AlertDescription.decrypt_error, f"{peer} Finished does not verify")
        self._transcript.add(message)
        return ks

    def pop_output(self) -> list[tuple[Epoch, bytes]]:
        out = [(e, bytes(b)) for e, b in self._output if b]
        self._output = []
        return out

    def pop_secrets(self) -> list[TrafficSecret]:
        out = self._secrets
        self._secrets = []
        return out

    # -- helpers for subclasses ----------------------------------------------

    def _receive(self, epoch: Epoch, data: bytes) -> None:
        if epoch == Epoch.ZERO_RTT:
            # RFC 9001 §8.3: CRYPTO in a 0-RTT packet is PROTOCOL_VIOLATION.
            raise TlsAlert(
                AlertDescription.unexpected_message,
                "handshake data in 0-RTT",
                error_code=TransportErrorCode.PROTOCOL_VIOLATION,
            )
        buf = self._buffers.get(epoch)
        if buf is None:
            buf = self._buffers[epoch] = bytearray()
        buf += data
        if len(buf) > MAX_BUFFERED:
            raise TlsAlert(
                AlertDescription.unexpected_message,
                f"more than {MAX_BUFFERED} bytes of unprocessed handshake data",
                error_code=TransportErrorCode.CRYPTO_BUFFER_EXCEEDED,
            )
        while len(buf) >= 4:
            length = int.from_bytes(buf[1:4], "big")
            if length > MAX_BUFFERED - 4:
                raise TlsAlert(
                    AlertDescription.unexpected_message,
                    f"handshake message of {length} bytes is too large",
                    error_code=TransportErrorCode.CRYPTO_BUFFER_EXCEEDED,
                )
            if len(buf) < 4 + length:
                break
            msg_type = buf[0]
            message = bytes(buf[: 4 + length])
            del buf[: 4 + length]
            if msg_type == HandshakeType.key_update:
                # RFC 9001 §6: QUIC replaces KeyUpdate; receiving one is 0x010a.
                raise unexpected("TLS KeyUpdate is not used in QUIC")
            self._handle(epoch, msg_type, message)
            if self._failed is not None:  # pragma: no cover - defensive
                raise self._failed

    def _handle(self, epoch: Epoch, msg_type: int, message: bytes) -> None:
        raise NotImplementedError

    def _expect_epoch(self, epoch: Epoch, expected: Epoch, msg_type: int) -> None:
        if epoch != expected:
            raise unexpected(
                f"{_type_name(msg_type)} in the {epoch.name} epoch, expected {expected.name}"
            )

    def _leave_epoch(self, epoch: Epoch) -> None:
        """RFC 9001 §4.1.3: unconsumed data from an epoch we are leaving is an error."""
        if self._buffers.get(epoch):
            raise unexpected(f"extra handshake data in the {epoch.name} epoch")

    def _send(self, epoch: Epoch, message: bytes, transcript: bool = True) -> None:
        if transcript:
            self._transcript.add(message)
        if self._output and self._output[-1][0] == epoch:
            self._output[-1][1].extend(message)
        else:
            self._output.append((epoch, bytearray(message)))

    def _install(self, epoch: Epoch, is_write: bool, suite: CipherSuite, secret: bytes) -> None:
        self._secrets.append(TrafficSecret(epoch, is_write, suite, secret))

    def _log_secret(self, epoch: Epoch, client_side: bool, secret: bytes) -> None:
        label = _KEYLOG_LABELS.get((epoch, client_side))
        if label is not None:
            self._keylog.log(label, self._client_random, secret)


def _type_name(msg_type: int) -> str:
    try:
        return HandshakeType(msg_type).name
    except ValueError:
        return f"handshake message type {msg_type}"

"""A stand-in TLS engine for engine tests: same interface as tquic.crypto.tls
(start/receive/pop_output/pop_secrets/handshake_complete/...), no cryptographic
authentication.  It exchanges transport parameters and derives per-epoch
secrets from two random values, so the QUIC engine can be tested end to end
independently of the real TLS handshake.  Messages are framed as
type(1) | length(3) | body and may arrive fragmented.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from tquic.crypto.keys import CipherSuite
from tquic.wire.errors import QuicError, crypto_error

INITIAL, ZERO_RTT, HANDSHAKE, ONE_RTT = 0, 1, 2, 3
CH, SH, EE, FIN, CFIN = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class FakeSecret:
    epoch: int
    is_write: bool
    suite: CipherSuite
    secret: bytes


class FakeAlert(QuicError):
    def __init__(self, description: int, reason: str) -> None:
        super().__init__(crypto_error(description), reason)
        self.description = description


def _derive(label: bytes, cr: bytes, sr: bytes) -> bytes:
    return hashlib.sha256(label + cr + sr).digest()


_KEYLOG_LABEL = {HANDSHAKE: "{}_HANDSHAKE_TRAFFIC_SECRET", ONE_RTT: "{}_TRAFFIC_SECRET_0"}


class FakeTls:
    cipher_suite = CipherSuite.AES_128_GCM_SHA256  # the suite of every secret below

    def __init__(self, is_client: bool, params: bytes, alpn: str | None = "fake",
                 keylog_file: str | None = None) -> None:
        self.is_client = is_client
        self.keylog_file = keylog_file  # SSLKEYLOGFILE lines, as the real TLS writes them
        self.params = params
        self.alpn_protocol = alpn
        self.handshake_complete = False
        self.peer_transport_parameters: bytes | None = None
        self.session_resumed = False
        self.early_data_accepted = False
        self.new_session_tickets: list[Any] = []
        self._out: list[tuple[int, bytes]] = []
        self._secrets: list[FakeSecret] = []
        self._buf: dict[int, bytes] = {INITIAL: b"", HANDSHAKE: b"", ONE_RTT: b""}
        self._cr = b""
        self._sr = b""

    def _send(self, epoch: int, mtype: int, body: bytes) -> None:
        self._out.append((epoch, bytes((mtype,)) + len(body).to_bytes(3, "big") + body))

    def _secret(self, epoch: int, label: bytes) -> None:
        for is_write, side in ((True, self.is_client), (False, not self.is_client)):
            who = b"c" if side else b"s"
            self._secrets.append(FakeSecret(epoch, is_write, CipherSuite.AES_128_GCM_SHA256,
                                            _derive(label + who, self._cr, self._sr)))

    def start(self) -> None:
        self._cr = os.urandom(32)
        self._send(INITIAL, CH, self._cr + self.params)

    def receive(self, epoch: Any, data: bytes) -> None:
        epoch = int(epoch)
        buf = self._buf[epoch] + data
        while len(buf) >= 4:
            n = int.from_bytes(buf[1:4], "big")
            if len(buf) < 4 + n:
                break
            self._handle(epoch, buf[0], buf[4:4 + n])
            buf = buf[4 + n:]
        self._buf[epoch] = buf

    def _handle(self, epoch: int, mtype: int, body: bytes) -> None:
        if self.is_client:
            if mtype == SH and epoch == INITIAL:
                self._sr = body[:32]
                self._secret(HANDSHAKE, b"hs")
            elif mtype == EE and epoch == HANDSHAKE:
                self.peer_transport_parameters = body
            elif mtype == FIN and epoch == HANDSHAKE:
                self._send(HANDSHAKE, CFIN, b"")
                self._secret(ONE_RTT, b"ap")
                self.handshake_complete = True
            else:
                raise FakeAlert(10, f"unexpected message {mtype} in {epoch}")
        else:
            if mtype == CH and epoch == INITIAL:
                self._cr = body[:32]
                self.peer_transport_parameters = body[32:]
                self._sr = os.urandom(32)
                self._send(INITIAL, SH, self._sr)
                self._secret(HANDSHAKE, b"hs")
                self._send(HANDSHAKE, EE, self.params)
                self._send(HANDSHAKE, FIN, os.urandom(600))  # certificate-sized flight
                self._secrets.append(FakeSecret(ONE_RTT, True, CipherSuite.AES_128_GCM_SHA256,
                                                _derive(b"aps", self._cr, self._sr)))
            elif mtype == CFIN and epoch == HANDSHAKE:
                self._secrets.append(FakeSecret(ONE_RTT, False, CipherSuite.AES_128_GCM_SHA256,
                                                _derive(b"apc", self._cr, self._sr)))
                self.handshake_complete = True
            else:
                raise FakeAlert(10, f"unexpected message {mtype} in {epoch}")

    def pop_output(self) -> list[tuple[int, bytes]]:
        out, self._out = self._out, []
        return out

    def pop_secrets(self) -> list[FakeSecret]:
        out, self._secrets = self._secrets, []
        if self.keylog_file is not None and out:
            with open(self.keylog_file, "a", encoding="ascii") as f:
                for s in out:
                    side = "CLIENT" if s.is_write == self.is_client else "SERVER"
                    label = _KEYLOG_LABEL[s.epoch].format(side)
                    f.write(f"{label} {self._cr.hex()} {s.secret.hex()}\n")
        return out


def fake_tls_factory(is_client: bool, config: Any, params: bytes) -> FakeTls:
    return FakeTls(is_client, params, keylog_file=getattr(config, "keylog_file", None))


def rewriting_tls_factory(client: bool, extra: bytes = b"", **changes: Any) -> Any:
    """``fake_tls_factory`` whose client (``client``) or server sends its transport
    parameters with ``changes`` (and the encoded parameters ``extra`` after them, for
    values our encoder refuses): a peer that breaks a rule of RFC 9000 §18.2 or of an
    extension, seen by the other engine as it would be on the wire."""
    from dataclasses import replace

    from tquic.wire.params import decode_transport_parameters, encode_transport_parameters

    def factory(is_client: bool, config: Any, params: bytes) -> FakeTls:
        if is_client == client:
            params = encode_transport_parameters(
                replace(decode_transport_parameters(params), **changes)) + extra
        return fake_tls_factory(is_client, config, params)
    return factory

"""(EC)DHE key exchange for the key_share extension (RFC 9846 §4.2.8.2, §7.4.2)."""

from __future__ import annotations

from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tquic.crypto.tls.alerts import AlertDescription, TlsAlert

__all__ = ["KeyExchange", "NamedGroup"]


class NamedGroup(IntEnum):
    """Supported groups (RFC 9846 §4.2.7)."""

    secp256r1 = 0x0017
    secp384r1 = 0x0018
    x25519 = 0x001D


_CURVES: dict[NamedGroup, ec.EllipticCurve] = {
    NamedGroup.secp256r1: ec.SECP256R1(),
    NamedGroup.secp384r1: ec.SECP384R1(),
}
# Uncompressed point length: 0x04 || X || Y (RFC 9846 §4.2.8.2).
_POINT_LENGTH = {NamedGroup.secp256r1: 65, NamedGroup.secp384r1: 97}


class KeyExchange:
    """One ephemeral key pair; never reused across connections (RFC 9846 §4.2.8)."""

    __slots__ = ("_ec", "_x25519", "group", "public_bytes")

    def __init__(self, group: NamedGroup) -> None:
        self.group = group
        self._x25519: x25519.X25519PrivateKey | None = None
        self._ec: ec.EllipticCurvePrivateKey | None = None
        if group == NamedGroup.x25519:
            self._x25519 = x25519.X25519PrivateKey.generate()
            self.public_bytes = self._x25519.public_key().public_bytes_raw()
        else:
            self._ec = ec.generate_private_key(_CURVES[group])
            self.public_bytes = self._ec.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )

    def exchange(self, peer: bytes) -> bytes:
        """The shared secret; a malformed or degenerate peer share is illegal_parameter."""
        try:
            if self._x25519 is not None:
                if len(peer) != 32:
                    raise ValueError("x25519 share is not 32 bytes")
                shared = self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
                # RFC 9846 §7.4.2: abort on the all-zero X25519 result.
                if not any(shared):
                    raise ValueError("all-zero x25519 shared secret")
                return shared
            if self._ec is None:  # pragma: no cover - constructor sets one of the two
                raise ValueError("no key")
            # RFC 9846 §4.2.8.2: uncompressed points only; from_encoded_point
            # checks the point is on the curve.
            if len(peer) != _POINT_LENGTH[self.group] or peer[0] != 4:
                raise ValueError("not an uncompressed point of the right size")
            pub = ec.EllipticCurvePublicKey.from_encoded_point(self._ec.curve, peer)
            return self._ec.exchange(ec.ECDH(), pub)
        except ValueError as exc:
            raise TlsAlert(AlertDescription.illegal_parameter, f"bad key share: {exc}") from None

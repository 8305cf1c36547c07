"""Packet protection for one direction of one epoch: AEAD + header protection.

RFC 9001 §5.3 (AEAD), §5.4 (header protection), §6 (key update), §6.6 (AEAD
limits) and draft-ietf-quic-multipath "Nonce Calculation" (path ID in the nonce).

Cipher objects are built once per key and reused for every packet: the AEAD
object, the AES-ECB encryptor of AES header protection, and one ChaCha20
context whose nonce is reset per packet for ChaCha20 header protection.  The
per-packet path does integer arithmetic on whole fields (nonce, packet
number, mask), never a loop over bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from tquic.crypto.keys import (
    IV_LENGTH,
    CipherSuite,
    initial_secrets,
    key_length,
    next_generation_secret,
    packet_keys,
)
from tquic.wire.errors import QuicError, TransportErrorCode

# Every AEAD QUIC uses here has a 16-byte tag and a 16-byte header protection
# sample (RFC 9001 §5.3, §5.4.2).
TAG_LENGTH = 16
SAMPLE_LENGTH = 16
# The sample starts 4 bytes after the start of the Packet Number field, as if
# the packet number were 4 bytes long (RFC 9001 §5.4.2).
_SAMPLE_SKIP = 4
_CHACHA_ZEROS = bytes(5)
_ECB = modes.ECB()  # stateless: one mode object for every header protection context
# The 5 mask bytes as (mask[0], mask[1..4] as a 32-bit integer) in one call.
_unpack_mask: Callable[[bytes], tuple[int, int]] = struct.Struct("!BI").unpack_from
_from_bytes = int.from_bytes  # big-endian by default (Python 3.11)
_PN_MASK = (0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF)  # by packet number length

# What the receive side accepts: a packet may be a slice (or a memoryview into)
# a coalesced datagram.
PacketBytes = bytes | bytearray | memoryview


class DecryptionError(Exception):
    """A packet that cannot be unprotected: too short to sample, or it does not
    authenticate.  The engine drops it silently (RFC 9001 §5.5); it is not a
    QuicError."""


@dataclass(frozen=True, slots=True)
class AeadLimits:
    """Usage limits of an AEAD (RFC 9001 §6.6).

    ``confidentiality``: packets that may be protected with one key before a key
    update is required.  ``integrity``: packets that may fail authentication over
    the whole connection, across all keys, before it must close with
    AEAD_LIMIT_REACHED.
    """

    confidentiality: int
    integrity: int


# RFC 9001 §6.6: GCM 2^23 / 2^52; ChaCha20-Poly1305's confidentiality limit is
# larger than the packet number space (so 2^62 bounds it), integrity 2^36.
AEAD_LIMITS: dict[CipherSuite, AeadLimits] = {
    CipherSuite.AES_128_GCM_SHA256: AeadLimits(1 << 23, 1 << 52),
    CipherSuite.AES_256_GCM_SHA384: AeadLimits(1 << 23, 1 << 52),
    CipherSuite.CHACHA20_POLY1305_SHA256: AeadLimits(1 << 62, 1 << 36),
}


class HeaderProtection:
    """The header protection function of a suite with one key (RFC 9001 §5.4.3, §5.4.4).

    It is shared by every key generation of an epoch: the "quic hp" key does not
    change on key update (RFC 9001 §5.4, §6).
    """

    __slots__ = ("_ctx", "_mask", "key", "suite")

    def __init__(self, suite: CipherSuite, key: bytes) -> None:
        if len(key) != key_length(suite):
            raise ValueError(f"header protection key for {suite.name} must be "
                             f"{key_length(suite)} bytes, not {len(key)}")
        self.suite = suite
        self.key = key
        # The OpenSSL context (~1 KB) is built on first use and dropped by ``release``
        # (a connection that has gone quiet keeps only the key bytes).
        self._ctx: CipherContext | None = None
        self._mask: Callable[[PacketBytes], bytes] | None = None

    def mask_function(self) -> Callable[[PacketBytes], bytes]:
        """``f(sample)``: the mask, at least 5 bytes of which only the first 5 are used."""
        if self._mask is not None:
            return self._mask
        key = self.key
        if self.suite == CipherSuite.CHACHA20_POLY1305_SHA256:
            # RFC 9001 §5.4.4: the 16-byte sample is counter (4 bytes LE) ‖ nonce
            # (12 bytes), which is exactly the 16-byte "nonce" cryptography's
            # ChaCha20 takes; one context is kept and its nonce reset per packet.
            self._ctx = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
            self._mask = self._chacha_mask
        else:
            # RFC 9001 §5.4.3: mask = AES-ECB(hp_key, sample).  ECB keeps no state
            # between blocks, so one encryptor serves every packet.
            self._ctx = Cipher(algorithms.AES(key), _ECB).encryptor()
            self._mask = self._ctx.update
        return self._mask

    def mask(self, sample: PacketBytes) -> bytes:
        return self.mask_function()(sample)

    def release(self) -> None:
        """Drop the OpenSSL context; the next mask builds it again."""
        self._ctx = None
        self._mask = None

    def _chacha_mask(self, sample: PacketBytes) -> bytes:
        ctx = self._ctx
        if ctx is None:  # released while a key generation still held this method
            self.mask_function()
            ctx = self._ctx
            assert ctx is not None
        ctx.reset_nonce(sample)  # type: ignore[arg-type]  # any buffer works at runtime
        return ctx.update(_CHACHA_ZEROS)


def compute_nonce(iv: bytes, packet_number: int, path_id: int = 0) -> bytes:
    """IV XOR (path ID (32) ‖ 0b00 ‖ packet number (62)), left-padded to the IV length.

    RFC 9001 §5.3 with draft-ietf-quic-multipath "Nonce Calculation"; path ID 0
    gives exactly the RFC 9001 nonce.  The hot path inlines this expression.
    """
    if packet_number >> 62 or path_id >> 32:  # also catches negative values
        raise ValueError(f"packet number {packet_number} or path ID {path_id} out of range")
    return (int.from_bytes(iv, "big") ^ ((path_id << 64) | packet_number)).to_bytes(len(iv), "big")


class PacketProtection:
    """Packet protection of one direction of one epoch (one key generation).

    ``protect`` seals a packet, ``unprotect`` opens one; the two halves of
    ``unprotect`` (``remove_header_protection`` and ``decrypt_payload``) are public
    so that the engine can read the Key Phase bit before it picks the key.
    """

    __slots__ = (
        "_aead",
        "_hp_mask",
        "_iv_int",
        "confidentiality_limit",
        "decryption_failures",
        "header_protection",
        "integrity_limit",
        "iv",
        "key",
        "packets_protected",
        "secret",
        "suite",
        "version",
    )

    def __init__(
        self,
        suite: CipherSuite,
        secret: bytes,
        version: int,
        header_protection: HeaderProtection | None = None,
    ) -> None:
        """Derive key, iv and (unless ``header_protection`` is given, as after a key
        update) the header protection key from ``secret`` (RFC 9001 §5.1)."""
        key, iv, hp = packet_keys(suite, secret, version)
        self.suite = suite
        self.secret = secret
        self.version = version
        self.key = key
        self.iv = iv
        self._iv_int = int.from_bytes(iv, "big")
        # Built on first use (``_make_aead``): the next key phase's receive keys are
        # derived ahead (RFC 9001 §6.3), but their AEAD context (~2.6 KB of OpenSSL
        # memory) waits for the first packet that needs it, so an idle connection does
        # not hold a third one.  The secret, key and IV — the HKDF work — are ready.
        self._aead: AESGCM | ChaCha20Poly1305 | None = None
        if header_protection is None:
            header_protection = HeaderProtection(suite, hp)
        elif header_protection.suite != suite:
            raise ValueError("header protection belongs to another cipher suite")
        self.header_protection = header_protection
        self._hp_mask: Callable[[PacketBytes], bytes] | None = None  # bound on first use
        limits = AEAD_LIMITS[suite]
        self.confidentiality_limit = limits.confidentiality
        self.integrity_limit = limits.integrity
        # RFC 9001 §6.6: packets protected with this key (checked against the
        # confidentiality limit) and packets that failed authentication with it
        # (the engine sums these over all keys against the integrity limit).
        self.packets_protected = 0
        self.decryption_failures = 0

    @classmethod
    def from_secret(cls, suite: CipherSuite, secret: bytes, version: int) -> PacketProtection:
        """Protection for a traffic secret from TLS (or an Initial secret)."""
        return cls(suite, secret, version)

    def _make_aead(self) -> AESGCM | ChaCha20Poly1305:
        key = self.key
        aead = (ChaCha20Poly1305(key) if self.suite == CipherSuite.CHACHA20_POLY1305_SHA256
                else AESGCM(key))
        self._aead = aead
        return aead

    def _bind_hp(self) -> Callable[[PacketBytes], bytes]:
        mask = self._hp_mask = self.header_protection.mask_function()
        return mask

    def release(self) -> None:
        """Drop the OpenSSL contexts (AEAD and header protection, ~3.6 KB); the keys
        stay, and the next packet builds the contexts again (~10 µs).  For connections
        that have gone quiet: their memory is then mostly Python objects.  Every
        PacketProtection sharing the header protection must be released with it."""
        self._aead = None
        self._hp_mask = None
        self.header_protection.release()

    @property
    def holds_contexts(self) -> bool:
        """An OpenSSL context (AEAD or header protection) is built: False when new
        and after ``release`` until the next packet needs one."""
        return self._aead is not None or self._hp_mask is not None

    @property
    def hp_key(self) -> bytes:
        return self.header_protection.key

    @property
    def remaining_packets(self) -> int:
        """Packets this key may still protect before the confidentiality limit (§6.6)."""
        return self.confidentiality_limit - self.packets_protected

    def next_generation(self) -> PacketProtection:
        """The keys of the next key phase: new secret, key and iv, same header
        protection (RFC 9001 §6.1; "quicv2 ku" for v2, RFC 9369 §3.3.2)."""
        secret = next_generation_secret(self.suite, self.secret, self.version)
        return PacketProtection(self.suite, secret, self.version, self.header_protection)

    def nonce(self, packet_number: int, path_id: int = 0) -> bytes:
        """The AEAD nonce of a packet (see ``compute_nonce``)."""
        return compute_nonce(self.iv, packet_number, path_id)

    def protect(self, header: bytes, payload: bytes, packet_number: int, path_id: int = 0) -> bytes:
        """Seal ``payload`` with ``header`` (unprotected, ending with the packet number)
        as associated data, then apply header protection (RFC 9001 §5.3, §5.4.1).

        The packet number length is read from header[0] & 3.  Raises ValueError for
        a payload too short to leave a complete sample (§5.4.2: the caller pads)
        or a packet number / path ID out of range, and QuicError(AEAD_LIMIT_REACHED)
        once the key has reached its confidentiality limit (§6.6).
        """
        if packet_number >> 62 or path_id >> 32:  # also catches negative values
            raise ValueError(f"packet number {packet_number} or path ID {path_id} out of range")
        if self.packets_protected >= self.confidentiality_limit:
            raise QuicError(
                TransportErrorCode.AEAD_LIMIT_REACHED,
                "confidentiality limit of the packet protection key reached (RFC 9001 §6.6)",
            )
        self.packets_protected += 1
        aead = self._aead or self._make_aead()
        # The nonce (see compute_nonce), inlined: this is the per-packet path.
        ciphertext = aead.encrypt(
            (self._iv_int ^ ((path_id << 64) | packet_number)).to_bytes(IV_LENGTH), payload, header
        )
        first = header[0]
        pn_len = (first & 3) + 1
        header_len = len(header)
        # RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number starts.
        sample = ciphertext[_SAMPLE_SKIP - pn_len : _SAMPLE_SKIP + SAMPLE_LENGTH - pn_len]
        if len(sample) != SAMPLE_LENGTH or header_len <= pn_len:
            raise ValueError("payload too short for a header protection sample (RFC 9001 §5.4.2)")
        mask0, mask_pn = _unpack_mask((self._hp_mask or self._bind_hp())(sample))
        # RFC 9001 §5.4.1: mask the 4 low bits of a long header's first byte (5 of a
        # short one) and the packet number, with one XOR over the whole header as an
        # integer: mask byte 0 lands on the first byte, mask bytes 1..pn_len on the
        # packet number, which ends the header.
        mask0 &= 0x0F if first & 0x80 else 0x1F
        protected = (
            _from_bytes(header)
            ^ (mask0 << ((header_len - 1) << 3))
            ^ (mask_pn >> ((4 - pn_len) << 3))
        )
        return protected.to_bytes(header_len) + ciphertext

    def remove_header_protection(
        self, packet: PacketBytes, pn_offset: int
    ) -> tuple[bytes, int, int]:
        """Unmask the first byte and the packet number (RFC 9001 §5.4.1, §5.4.2).

        Returns (plain header including the packet number, truncated packet
        number, packet number length).  Raises DecryptionError when the packet is
        too short to hold a complete sample.  Nothing is authenticated yet: the
        caller may look at the Key Phase bit, then call ``decrypt_payload``.
        """
        sample = packet[pn_offset + _SAMPLE_SKIP : pn_offset + _SAMPLE_SKIP + SAMPLE_LENGTH]
        if len(sample) != SAMPLE_LENGTH or pn_offset < 1:
            raise DecryptionError("packet too short for a header protection sample")
        mask0, mask_pn = _unpack_mask((self._hp_mask or self._bind_hp())(sample))
        first = packet[0]
        mask0 &= 0x0F if first & 0x80 else 0x1F
        pn_len = ((first ^ mask0) & 3) + 1
        pn_end = pn_offset + pn_len
        plain = (
            _from_bytes(packet[:pn_end])
            ^ (mask0 << ((pn_end - 1) << 3))
            ^ (mask_pn >> (32 - (pn_len << 3)))
        )
        return plain.to_bytes(pn_end), plain & _PN_MASK[pn_len], pn_len

    def decrypt_payload(
        self, packet: PacketBytes, header: bytes, packet_number: int, path_id: int = 0
    ) -> bytes:
        """Open the payload that follows ``header`` (as returned by
        ``remove_header_protection``) in ``packet``; raises DecryptionError."""
        try:
            nonce = (self._iv_int ^ ((path_id << 64) | packet_number)).to_bytes(IV_LENGTH)
            aead = self._aead or self._make_aead()
            return aead.decrypt(nonce, packet[len(header) :], header)
        except InvalidTag:
            self.decryption_failures += 1
            raise DecryptionError("packet does not authenticate") from None
        except OverflowError:  # a packet number or path ID no nonce can carry
            raise DecryptionError("packet number out of range") from None

    def open_header(
        self, packet: PacketBytes, pn_offset: int, largest_pn: int
    ) -> tuple[bytes, int]:
        """Remove header protection and recover the full packet number from
        ``largest_pn`` (-1 if none yet; RFC 9000 §17.1): (plain header including the
        packet number, full packet number).  Raises DecryptionError when the packet
        is too short to hold a complete sample.

        This is remove_header_protection + wire's decode_packet_number inlined into
        one call: the per-packet receive path (the caller may look at the Key Phase
        bit before it calls ``decrypt_payload``).
        """
        sample = packet[pn_offset + _SAMPLE_SKIP : pn_offset + _SAMPLE_SKIP + SAMPLE_LENGTH]
        if len(sample) != SAMPLE_LENGTH or pn_offset < 1:
            raise DecryptionError("packet too short for a header protection sample")
        mask0, mask_pn = _unpack_mask((self._hp_mask or self._bind_hp())(sample))
        first = packet[0]
        mask0 &= 0x0F if first & 0x80 else 0x1F
        pn_len = ((first ^ mask0) & 3) + 1
        pn_end = pn_offset + pn_len
        pn_nbits = pn_len << 3
        plain = (
            _from_bytes(packet[:pn_end])
            ^ (mask0 << ((pn_end - 1) << 3))
            ^ (mask_pn >> (32 - pn_nbits))
        )
        # RFC 9000 Appendix A.3 (tquic.wire.packet.decode_packet_number), inlined.
        expected = largest_pn + 1
        win = 1 << pn_nbits
        hwin = win >> 1
        packet_number = (expected & ~(win - 1)) | (plain & (win - 1))
        if packet_number <= expected - hwin and packet_number < (1 << 62) - win:
            packet_number += win
        elif packet_number > expected + hwin and packet_number >= win:
            packet_number -= win
        return plain.to_bytes(pn_end), packet_number

    def unprotect(
        self, packet: PacketBytes, pn_offset: int, largest_pn: int, path_id: int = 0
    ) -> tuple[bytes, bytes, int]:
        """Remove header protection, recover the full packet number from
        ``largest_pn`` (-1 if none yet; RFC 9000 §17.1) and open the payload.

        ``packet`` starts at the packet's first byte and ends where the packet
        ends (the Length field of a long header).  Returns (plain header, plaintext
        payload, full packet number); raises DecryptionError and nothing else for
        any packet that does not authenticate.
        """
        header, packet_number = self.open_header(packet, pn_offset, largest_pn)
        return header, self.decrypt_payload(packet, header, packet_number, path_id), packet_number

def initial_protections(
    version: int, dcid: bytes, is_client: bool
) -> tuple[PacketProtection, PacketProtection]:
    """(send, receive) Initial packet protection for the client's first Destination
    Connection ID (RFC 9001 §5.2; RFC 9369 §3.3.1).  Initial packets always use
    AES-128-GCM with SHA-256."""
    client, server = initial_secrets(version, dcid)
    suite = CipherSuite.AES_128_GCM_SHA256
    client_pp = PacketProtection(suite, client, version)
    server_pp = PacketProtection(suite, server, version)
    return (client_pp, server_pp) if is_client else (server_pp, client_pp)

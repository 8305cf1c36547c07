"""QUIC-LB connection IDs (draft-ietf-quic-load-balancers): a server ID inside every CID.

A load balancer that knows the configuration reads the server ID out of any
connection ID a server issued -- in the clear, or AES-encrypted so observers
cannot link a connection's CIDs -- and routes every packet of the connection
to that server without per-connection state (§3, §5).

Layout (§5.2)::

    First Octet (8) = Config Rotation (3) | Length or Random Bits (5)
    Server ID (8..) | Nonce (32..)          -- 5..19 octets, encrypted with a key

Encryption is one AES-128-ECB pass when server ID and nonce fill exactly 16
octets (§5.4.1), else a four-round Feistel network over the two halves
(§5.4.2).  Decoding never needs the nonce, so a load balancer stops after
three passes when the server ID fits in the left half (§5.5.2).

We use the five low bits of the first octet, which the draft leaves to the
server when it does not self-describe the length (§2.3), to carry a *worker
index* so that several processes behind one SO_REUSEPORT port can be steered
in the kernel (§7.2 "Server Process Demultiplexing"); the index is XORed
with the CID's last octet so the bits do not repeat across a connection's
CIDs.  A load balancer in front of the machine ignores those bits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAX_CONFIG_ID = 6  # §2.1: 0b111 is reserved for unroutable CIDs
UNROUTABLE_CONFIG_ID = 7
MAX_WORKERS = 32  # five bits of the first octet
MIN_NONCE = 4  # §5.3
MAX_PLAINTEXT = 19  # §5.3: server ID + nonce <= 19 octets (a v1 CID is <= 20)
KEY_SIZE = 16


class QuicLbError(ValueError):
    """A QUIC-LB configuration or connection ID that breaks the draft's rules."""


@dataclass(frozen=True, slots=True)
class QuicLbConfig:
    """One QUIC-LB configuration as a configuration agent hands it to a server (§5.3)."""

    server_id: bytes
    nonce_length: int = 6
    config_id: int = 0
    key: bytes | None = None  # 16 octets: encrypted CIDs; None: plaintext
    encode_length: bool = False  # §2.3 length self-description (excludes worker bits)

    def __post_init__(self) -> None:
        if not 0 <= self.config_id <= MAX_CONFIG_ID:
            raise QuicLbError(f"config_id: must be within [0, {MAX_CONFIG_ID}] (0b111 is "
                              "reserved, §2.2)")
        if len(self.server_id) < 1:
            raise QuicLbError("server_id: at least one octet (§5.1)")
        if self.nonce_length < MIN_NONCE:
            raise QuicLbError(f"nonce_length: at least {MIN_NONCE} octets (§5.3)")
        if len(self.server_id) + self.nonce_length > MAX_PLAINTEXT:
            raise QuicLbError(f"server_id + nonce_length: at most {MAX_PLAINTEXT} octets (§5.3)")
        if self.key is not None and len(self.key) != KEY_SIZE:
            raise QuicLbError(f"key: must be {KEY_SIZE} octets (AES-128, §5.4)")

    @property
    def cid_length(self) -> int:
        return 1 + len(self.server_id) + self.nonce_length

    @property
    def plaintext_length(self) -> int:
        return len(self.server_id) + self.nonce_length


class _Feistel:
    """The §5.4 cipher over the plaintext block (server ID | nonce) of one length."""

    __slots__ = ("_ecb", "_half", "_key", "_length", "_odd")

    def __init__(self, key: bytes, length: int) -> None:
        self._key = key
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        self._length = length
        self._half = (length + 1) // 2
        self._odd = length % 2 == 1

    def _aes(self, block: bytes) -> bytes:
        return self._ecb.update(block)

    def _round(self, pass_no: int, half: bytes) -> bytes:
        # §5.4.2 expand(length, pass, half): half, zero padding, length, pass -> 16 octets.
        block = half + bytes(14 - len(half)) + bytes((self._length, pass_no))
        return self._aes(block)[: self._half]

    def _clear_right_first(self, value: bytes) -> bytes:
        return bytes((value[0] & 0x0F,)) + value[1:] if self._odd else value

    def _clear_left_last(self, value: bytes) -> bytes:
        return value[:-1] + bytes((value[-1] & 0xF0,)) if self._odd else value

    def _split(self, block: bytes) -> tuple[bytes, bytes]:
        half = self._half
        if not self._odd:
            return block[:half], block[half:]
        # Odd: the middle octet's high nibble goes left, its low nibble right (§5.4.2 step 2).
        return (self._clear_left_last(block[:half]),
                self._clear_right_first(block[half - 1:]))

    def _join(self, left: bytes, right: bytes) -> bytes:
        if not self._odd:
            return left + right
        return left[:-1] + bytes((left[-1] | right[0],)) + right[1:]

    def encrypt(self, plaintext: bytes) -> bytes:
        if self._length == 16:
            return self._aes(plaintext)  # §5.4.1 single pass
        left0, right0 = self._split(plaintext)
        right1 = self._clear_right_first(_xor(right0, self._round(1, left0)))
        left1 = self._clear_left_last(_xor(left0, self._round(2, right1)))
        right2 = self._clear_right_first(_xor(right1, self._round(3, left1)))
        left2 = self._clear_left_last(_xor(left1, self._round(4, right2)))
        return self._join(left2, right2)

    def decrypt(self, ciphertext: bytes, prefix: int) -> bytes:
        """The first ``prefix`` octets of the plaintext (three passes when they fit left)."""
        if self._length == 16:
            decryptor = Cipher(algorithms.AES(self._key), modes.ECB()).decryptor()
            return decryptor.update(ciphertext)[:prefix]
        left2, right2 = self._split(ciphertext)
        left1 = self._clear_left_last(_xor(left2, self._round(4, right2)))
        right1 = self._clear_right_first(_xor(right2, self._round(3, left1)))
        left0 = self._clear_left_last(_xor(left1, self._round(2, right1)))
        if prefix <= self._length // 2:
            return left0[:prefix]  # §5.5.2: the server ID sits in left_0
        right0 = self._clear_right_first(_xor(right1, self._round(1, left0)))
        return self._join(left0, right0)[:prefix]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b[: len(a)], "big")).to_bytes(len(a), "big")


def _cipher(config: QuicLbConfig) -> _Feistel | None:
    if config.key is None:
        return None
    return _Feistel(config.key, config.plaintext_length)


class QuicLbEncoder:
    """Issues connection IDs that route to ``config.server_id`` (and to one worker).

    With a key, nonces are a counter from a random start: §5.4 only needs them
    never to repeat under one key, and the ciphertext hides the sequence.  With
    no key they are random (§5.4: no observable relationship between CIDs).
    """

    __slots__ = ("_cipher", "_counter", "_nonce_max", "config", "worker")

    def __init__(self, config: QuicLbConfig, worker: int = 0) -> None:
        if not 0 <= worker < MAX_WORKERS:
            raise QuicLbError(f"worker: must be within [0, {MAX_WORKERS - 1}]")
        if worker and config.encode_length:
            raise QuicLbError("worker: the first octet's low bits carry either the length "
                              "(encode_length) or the worker, not both")
        self.config = config
        self.worker = worker
        self._cipher = _cipher(config)
        self._nonce_max = 1 << (8 * config.nonce_length)
        self._counter = int.from_bytes(os.urandom(config.nonce_length), "big")

    @property
    def cid_length(self) -> int:
        return self.config.cid_length

    def __call__(self) -> bytes:
        return self.generate()

    def generate(self, nonce: bytes | None = None) -> bytes:
        config = self.config
        if nonce is None:
            if self._cipher is None:
                nonce = os.urandom(config.nonce_length)
            else:
                self._counter = (self._counter + 1) % self._nonce_max
                nonce = self._counter.to_bytes(config.nonce_length, "big")
        body = config.server_id + nonce
        if self._cipher is not None:
            body = self._cipher.encrypt(body)
        # §2.3: the length of what follows the first octet, or (ours) the worker bits.
        low = (config.cid_length - 1 if config.encode_length
               else (self.worker ^ body[-1]) & 0x1F)
        return bytes(((config.config_id << 5) | low,)) + body


def decode_server_id(config: QuicLbConfig, cid: bytes) -> bytes | None:
    """The server ID a load balancer reads from ``cid`` (§5.5), or None when the CID
    does not use ``config`` (another config ID, or too short)."""
    if len(cid) < config.cid_length or cid[0] >> 5 != config.config_id:
        return None
    body = cid[1:config.cid_length]
    sid_len = len(config.server_id)
    cipher = _cipher(config)
    if cipher is None:
        return body[:sid_len]
    return cipher.decrypt(body, sid_len)


def worker_of(cid: bytes, workers: int) -> int:
    """The worker a CID issued by :class:`QuicLbEncoder` routes to (what the kernel's
    steering program computes: first octet XOR last octet, low five bits, mod N)."""
    if not cid:
        return 0
    return ((cid[0] ^ cid[-1]) & 0x1F) % workers

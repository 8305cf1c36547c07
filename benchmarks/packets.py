"""Per-packet cost of the data path: build + protect, unprotect + parse.

For each cipher suite it measures, on a 1,252-byte 1-RTT packet carrying one
STREAM frame:

- send:    encode_short_header + encode_stream_frame + PacketProtection.protect
- receive: parse_header + PacketProtection.unprotect + parse_frames
- the same with the crypto step alone (protect / unprotect on ready bytes), and
- the AEAD call alone (AESGCM / ChaCha20Poly1305 encrypt or decrypt): the
  ceiling a Python packet path cannot beat,

and prints packets per second and the ratio of each path to that ceiling.

    python benchmarks/packets.py [--quick] [--profile send|receive]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from tquic.crypto.keys import QUIC_V1, CipherSuite
from tquic.crypto.protection import PacketProtection, compute_nonce
from tquic.wire.buffer import Buffer
from tquic.wire.frames import (
    StreamFrame,
    encode_stream_frame,
    parse_frames,
    stream_data_capacity,
)
from tquic.wire.packet import (
    encode_packet_number,
    encode_short_header,
    parse_header,
)

PACKET_SIZE = 1252
TAG = 16
CID = bytes.fromhex("c0ffee00deadbeef")
STREAM_ID = 4
FIRST_PN = 1_000_000  # a packet number in the middle of a long transfer
SUITES = {
    CipherSuite.AES_128_GCM_SHA256: "AES-128-GCM",
    CipherSuite.AES_256_GCM_SHA384: "AES-256-GCM",
    CipherSuite.CHACHA20_POLY1305_SHA256: "ChaCha20-Poly1305",
}


def _secret(suite: CipherSuite) -> bytes:
    return os.urandom(48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32)


class Workload:
    """Everything one suite's measurements share: keys, stream data, packets."""

    def __init__(self, suite: CipherSuite, count: int) -> None:
        self.suite = suite
        self.count = count
        secret = _secret(suite)
        self.sender = PacketProtection.from_secret(suite, secret, QUIC_V1)
        self.receiver = PacketProtection.from_secret(suite, secret, QUIC_V1)
        # The packet number length a sender with ~1,000 packets in flight uses.
        _, self.pn_len = encode_packet_number(FIRST_PN, FIRST_PN - 1000)
        header_len = 1 + len(CID) + self.pn_len
        self.offset = 1 << 20
        room = PACKET_SIZE - header_len - TAG
        self.data = os.urandom(stream_data_capacity(STREAM_ID, self.offset, room))
        self.aead: AESGCM | ChaCha20Poly1305 = (
            ChaCha20Poly1305(self.sender.key)
            if suite == CipherSuite.CHACHA20_POLY1305_SHA256
            else AESGCM(self.sender.key)
        )
        self.header, self.payload = self._plain(FIRST_PN)
        # Distinct packets for the receive side, as a real receiver would see them.
        self.packets = [self.sender.protect(*self._plain(FIRST_PN + i), FIRST_PN + i)
                        for i in range(count)]
        if len(self.packets[0]) != PACKET_SIZE:
            raise RuntimeError(f"packet is {len(self.packets[0])} bytes, not {PACKET_SIZE}")
        self._check()

    def _plain(self, pn: int) -> tuple[bytes, bytes]:
        header = encode_short_header(CID, pn, self.pn_len, key_phase=False)
        buf = Buffer()
        encode_stream_frame(buf, STREAM_ID, self.offset, self.data, False)
        return header, buf.data

    def _check(self) -> None:
        """The receive loop really recovers the frame the send loop built."""
        header = parse_header(self.packets[0], 0, len(CID))
        _, payload, pn = self.receiver.unprotect(self.packets[0], header.pn_offset, FIRST_PN - 1)
        frames = parse_frames(payload)
        expected = StreamFrame(STREAM_ID, self.offset, self.data, False)
        if pn != FIRST_PN or frames != [expected]:
            raise RuntimeError("round trip failed")

    # --- the loops ------------------------------------------------------------

    def build_and_protect(self) -> None:
        protect = self.sender.protect
        pn_len, offset, data = self.pn_len, self.offset, self.data
        for pn in range(FIRST_PN, FIRST_PN + self.count):
            header = encode_short_header(CID, pn, pn_len, key_phase=False)
            buf = Buffer()
            encode_stream_frame(buf, STREAM_ID, offset, data, False)
            protect(header, buf.data, pn)

    def protect_only(self) -> None:
        protect, header, payload = self.sender.protect, self.header, self.payload
        for pn in range(FIRST_PN, FIRST_PN + self.count):
            protect(header, payload, pn)

    def seal_ceiling(self) -> None:
        encrypt, header, payload = self.aead.encrypt, self.header, self.payload
        nonce = compute_nonce(self.sender.iv, FIRST_PN)
        for _ in range(self.count):
            encrypt(nonce, payload, header)

    def unprotect_and_parse(self) -> None:
        unprotect = self.receiver.unprotect
        largest = FIRST_PN - 1
        for packet in self.packets:
            header = parse_header(packet, 0, len(CID))
            _, payload, largest = unprotect(packet, header.pn_offset, largest)
            parse_frames(payload)

    def unprotect_only(self) -> None:
        unprotect = self.receiver.unprotect
        pn_offset = 1 + len(CID)
        largest = FIRST_PN - 1
        for packet in self.packets:
            largest = unprotect(packet, pn_offset, largest)[2]

    def open_ceiling(self) -> None:
        decrypt = self.aead.decrypt
        packet = self.packets[0]
        header_len = 1 + len(CID) + self.pn_len
        header = self.receiver.remove_header_protection(packet, 1 + len(CID))[0]
        ciphertext = packet[header_len:]
        nonce = compute_nonce(self.receiver.iv, FIRST_PN)
        for _ in range(self.count):
            decrypt(nonce, ciphertext, header)


def rate(loop: Callable[[], None], count: int, repeats: int) -> float:
    """Best packets/s over ``repeats`` runs of ``loop`` (``count`` packets each)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer packets and repeats")
    parser.add_argument("--profile", choices=("send", "receive"),
                        help="profile one path with pyinstrument instead of timing")
    args = parser.parse_args()
    count, repeats = (2_000, 3) if args.quick else (20_000, 5)

    if args.profile:
        return profile(args.profile, count)

    print(f"{PACKET_SIZE}-byte 1-RTT packet, one STREAM frame, {count} packets x {repeats} "
          f"runs (best), Python {sys.version.split()[0]}")
    head = (f"{'suite':<18} {'path':<8} {'full pkt/s':>11} {'crypto pkt/s':>13} "
            f"{'AEAD pkt/s':>11} {'full/AEAD':>10} {'crypto/AEAD':>12} {'full Mbit/s':>12}")
    print(head)
    print("-" * len(head))
    for suite, name in SUITES.items():
        w = Workload(suite, count)
        rows = (
            ("send", w.build_and_protect, w.protect_only, w.seal_ceiling),
            ("receive", w.unprotect_and_parse, w.unprotect_only, w.open_ceiling),
        )
        for path, full_loop, crypto_loop, ceiling_loop in rows:
            full = rate(full_loop, count, repeats)
            crypto = rate(crypto_loop, count, repeats)
            ceiling = rate(ceiling_loop, count, repeats)
            mbps = full * PACKET_SIZE * 8 / 1e6
            print(f"{name:<18} {path:<8} {full:>11,.0f} {crypto:>13,.0f} {ceiling:>11,.0f} "
                  f"{full / ceiling:>10.2f} {crypto / ceiling:>12.2f} {mbps:>12,.0f}")
    return 0


def profile(path: str, count: int) -> int:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: pip install -e '.[bench]'")
        return 1
    w = Workload(CipherSuite.AES_128_GCM_SHA256, count * 10)
    loop = w.build_and_protect if path == "send" else w.unprotect_and_parse
    profiler = Profiler(interval=0.0001)
    profiler.start()
    loop()
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A server's CPU per QUIC handshake, measured in one process, and what it is spent on.

A real server endpoint (``tquic.io.endpoint.QuicEndpoint``, the object `tquic server`
runs, with Retry under load as by default and its collector tuned as `tquic server`
tunes it) answers client engines that this script drives directly: each client
verifies the server's CA-signed P-256 certificate, completes the handshake, and
closes.  What the server sends is captured instead of sent, so there is no socket and
no other process; only the server's own calls are timed (thread CPU time).  This is
benchmarks/stress.py's handshake row without the kernel, the clients' processes and
their noise: a figure to compare two versions of the code with.

It prints:

- the server's CPU per handshake: best and median of slices (other load only slows);
- the server's Python function calls per handshake (cProfile): a figure the machine's
  load does not move;
- where the server's CPU goes, by part: a sampling profiler (SIGALRM) over the server's
  calls, with the garbage collector's own CPU time apart, and its collections per
  generation.  The clients live in this process too: their objects count towards the
  collector's thresholds and are traced by its collections, so the collector's share
  here is two to three times a server process's own (benchmarks/stress.py's server);
- the floor: the cryptographic operations a server needs per handshake, timed alone.

    python benchmarks/handshake_server.py [--handshakes 1500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import random
import signal
import statistics
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

CONCURRENCY = 32  # handshakes in flight, as one client process of stress.py has
SLICE = 100  # handshakes per timed slice
SAMPLE_INTERVAL = 0.0005  # seconds between samples

# Where a sample's time goes: the first rule that matches, walking the stack from the
# innermost frame outwards.  (path suffix, function name or None for any) -> part.
_SIGN = "ECDSA P-256 signature (CertificateVerify)"
_KEX = "X25519 key share (generate, exchange)"
_HKDF = "HKDF / HMAC (key schedule, packet keys, reset tokens)"
_CONTEXTS = "AEAD + header protection contexts (per epoch)"
_PROTECT = "packet protection per packet (seal, open)"
_TLS = "TLS messages (parse, encode, transcript, certificate)"
_RETRY = "Retry, tokens and admission"
_CONSTRUCT = "connection construction (engine, protocol, components)"
_GLUE = "handshake glue (transport parameters, versions, CIDs)"
_BUILD = "building packets"
_RECEIVE = "receiving packets and frames (ACKs, CRYPTO)"
_IO = "endpoint, protocol, timers, asyncio"
PARTS: list[tuple[str, str | None, str]] = [
    ("crypto/tls/signatures.py", "sign", _SIGN),
    ("crypto/tls/kex.py", None, _KEX),
    ("crypto/keys.py", None, _HKDF),
    ("crypto/tls/key_schedule.py", None, _HKDF),
    ("crypto/protection.py", "__init__", _CONTEXTS),
    ("crypto/protection.py", "mask_function", _CONTEXTS),
    ("crypto/protection.py", "_make_aead", _CONTEXTS),
    ("crypto/protection.py", None, _PROTECT),
    ("crypto/tls/", None, _TLS),
    ("core/tokens.py", None, _RETRY),
    ("io/admission.py", None, _RETRY),
    ("io/endpoint.py", "_send_retry", _RETRY),
    ("", "__init__", _CONSTRUCT),
    ("core/path_setup.py", None, _CONSTRUCT),
    ("core/receiver.py", "_server_setup", _CONSTRUCT),
    ("core/connection.py", "_start", _CONSTRUCT),
    ("core/handshake.py", None, _GLUE),
    ("core/local_params.py", None, _GLUE),
    ("core/version_negotiation.py", None, _GLUE),
    ("wire/params.py", None, _GLUE),
    ("core/cid_issue.py", None, _GLUE),
    ("core/cids.py", None, _GLUE),
    ("core/packet_builder.py", None, _BUILD),
    ("core/send_loop.py", None, _BUILD),
    ("core/packet_draft.py", None, _BUILD),
    ("wire/frame_encoders.py", None, _BUILD),
    ("core/receiver.py", None, _RECEIVE),
    ("core/frame_handlers.py", None, _RECEIVE),
    ("wire/packet.py", None, _RECEIVE),
    ("wire/frame_parsers.py", None, _RECEIVE),
    ("io/", None, _IO),
    ("asyncio/", None, _IO),
]
GC_PART = "garbage collector"


def classify(frame: FrameType | None) -> tuple[str, str]:
    """(part, the function of the frame that decided it)."""
    while frame is not None:
        path = frame.f_code.co_filename
        name = frame.f_code.co_name
        for suffix, function, part in PARTS:
            if (function is None or name == function) and suffix in path and (
                    suffix or "/tquic/" in path):
                return part, f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}:{name}"
        frame = frame.f_back
    return "other", ""


class ServerBench:
    """A server endpoint in this process and the client engines that load it."""

    def __init__(self, certs: Path) -> None:
        self.certs = certs
        self.spent = 0.0  # server thread CPU seconds
        self.sampling = False
        self.samples: Counter[str] = Counter()
        self.where: Counter[tuple[str, str]] = Counter()  # (part, function): samples
        self.gc_seconds = 0.0  # the collector's CPU time within the server's calls
        self._gc_since_sample = 0.0
        self._last_sample = 0.0
        self._rng = random.Random(1)
        self._gc_started = 0.0
        self.collections: Counter[int] = Counter()  # by generation, in the server's calls
        self.profile: cProfile.Profile | None = None
        self.out: list[tuple[bytes, Any]] = []

    async def start(self) -> None:
        from tquic.cli.hq import HqServer
        from tquic.core.config import QuicConfiguration
        from tquic.io.admission import EndpointLimits
        from tquic.io.api import serve
        from tquic.io.udp import UdpSocket
        from tquic.io.workers import tune_collector_for_server

        out = self.out

        class CapturingSocket(UdpSocket):
            __slots__ = ()

            def send_batch(self, datagrams: Any, addr: Any, ecn: int = 0,
                           source: str | None = None) -> int:
                out.extend((bytes(d), addr) for d in datagrams)
                return len(datagrams)

        server_config = QuicConfiguration(
            is_client=False, alpn_protocols=("hq-interop",),
            certificate=(self.certs / "cert.pem").read_bytes(),
            private_key=(self.certs / "key.pem").read_bytes(), idle_timeout=30)
        self.client_config = QuicConfiguration(
            is_client=True, alpn_protocols=("hq-interop",), verify_peer=True,
            cadata=(self.certs / "ca.pem").read_bytes(), server_name="localhost",
            idle_timeout=30)
        tune_collector_for_server()
        self.sock = CapturingSocket.bind("127.0.0.1", 0)
        # retry="auto" as a server's default: 64 handshakes in flight (two stress.py
        # client processes) switch Retry on; here, one crowd of 32, so always on.
        self.server = await serve("127.0.0.1", 0, server_config, HqServer(None),
                                  sock=self.sock, limits=EndpointLimits(retry="always"))
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
            if self.sampling:
                self.collections[info["generation"]] += 1
            return
        seconds = time.thread_time() - self._gc_started
        self._gc_since_sample += seconds
        if self.sampling:
            self.gc_seconds += seconds

    def on_sample(self, signum: int, frame: FrameType | None) -> None:
        # A collection runs no Python code: a sample that falls in one is delivered after
        # it, in whatever was allocating.  Such a sample is dropped with the probability
        # that it fell in a collection (their share of the CPU time since the last
        # sample), and the collector is reported from its own measured time.
        now = time.thread_time()
        elapsed, self._last_sample = now - self._last_sample, now
        in_gc, self._gc_since_sample = self._gc_since_sample, 0.0
        if not self.sampling or (elapsed > 0 and self._rng.random() < in_gc / elapsed):
            return
        part, where = classify(frame)
        self.samples[part] += 1
        self.where[part, where] += 1

    def _server(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.profile is not None:
            self.profile.enable()
        self.sampling = True
        t0 = time.thread_time()
        fn(*args)
        self.spent += time.thread_time() - t0
        self.sampling = False
        if self.profile is not None:
            self.profile.disable()

    async def _loop_turn(self) -> None:
        """Let the server's timers and scheduled flushes run (timed as the server's)."""
        if self.profile is not None:
            self.profile.enable()
        self.sampling = True
        t0 = time.thread_time()
        await asyncio.sleep(0)
        self.spent += time.thread_time() - t0
        self.sampling = False
        if self.profile is not None:
            self.profile.disable()

    async def run(self, count: int) -> None:
        from tquic.core.connection import QuicConnection
        from tquic.paths.network_path import NetworkPath

        loop = asyncio.get_running_loop()
        endpoint = self.server.endpoint
        local = self.sock.local_address
        started = done = 0
        active: list[tuple[Any, Any]] = []
        while done < count:
            while len(active) < CONCURRENCY and started < count:
                client = QuicConnection(self.client_config, is_client=True)
                path = NetworkPath(("127.0.0.1", 20000 + started % 40000), local)
                client.connect(path, loop.time())
                active.append((client, path))
                started += 1
            for client, _path in active:
                for data, sent_on in client.datagrams_to_send(loop.time()):
                    self._server(endpoint.datagram_received, data, sent_on.local, self.sock)
            await self._loop_turn()
            by_address: dict[Any, list[bytes]] = {}
            for data, addr in self.out:
                by_address.setdefault(addr, []).append(data)
            self.out.clear()
            still: list[tuple[Any, Any]] = []
            for client, path in active:
                for data in by_address.get(path.local, ()):
                    client.receive_datagram(data, path, loop.time())
                if client.handshake_confirmed:
                    client.close(0, "")
                    for data, sent_on in client.datagrams_to_send(loop.time()):
                        self._server(endpoint.datagram_received, data, sent_on.local,
                                     self.sock)
                    done += 1
                else:
                    still.append((client, path))
            active = still
            await self._loop_turn()
            self.out.clear()


def crypto_floor() -> list[dict[str, Any]]:
    """The cryptographic work of one server handshake, each operation timed alone (best
    of five runs): ECDSA P-256 signature, X25519, HMAC-SHA256 (~20 per handshake: key
    schedule, packet keys, Finished, reset tokens), the AEAD and AES-ECB header
    protection contexts of the six keys in use, and AES-GCM over ~10 packets."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, x25519
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from tquic.crypto.keys import hmac_digest

    key = ec.generate_private_key(ec.SECP256R1())
    peer = x25519.X25519PrivateKey.generate().public_key()
    secret = os.urandom(32)
    aes_key = os.urandom(16)
    aead = AESGCM(aes_key)
    nonce = os.urandom(12)
    packet = os.urandom(1200)
    ecb = modes.ECB()

    def best(fn: Callable[[], object], number: int = 2000) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6

    rows = [
        ("ECDSA P-256 sign", 1, best(lambda: key.sign(packet[:130], ec.ECDSA(hashes.SHA256())))),
        ("X25519 generate", 1, best(x25519.X25519PrivateKey.generate)),
        ("X25519 exchange", 1,
         best(lambda: x25519.X25519PrivateKey.generate().exchange(peer)) -
         best(x25519.X25519PrivateKey.generate)),
        ("HMAC-SHA256", 20, best(lambda: hmac_digest("sha256", secret, packet[:60]))),
        ("AES-ECB context (header protection)", 6,
         best(lambda: Cipher(algorithms.AES(aes_key), ecb).encryptor())),
        ("AES-GCM context", 6, best(lambda: AESGCM(aes_key))),
        ("AES-GCM seal/open of a 1,200-byte packet", 10,
         best(lambda: aead.encrypt(nonce, packet, b"header"))),
    ]
    return [{"operation": name, "per_handshake": n, "us_each": round(us, 2),
             "us_per_handshake": round(n * us, 1)} for name, n, us in rows]


async def measure(handshakes: int) -> dict[str, Any]:
    from tquic.crypto.tls.certs import (
        certificate_to_pem,
        generate_ca,
        issue_certificate,
        private_key_to_pem,
    )

    certs = Path(tempfile.mkdtemp(prefix="hs-server-"))
    ca, ca_key = generate_ca()
    leaf, key = issue_certificate(ca, ca_key)
    (certs / "ca.pem").write_bytes(certificate_to_pem(ca))
    (certs / "cert.pem").write_bytes(certificate_to_pem(leaf))
    (certs / "key.pem").write_bytes(private_key_to_pem(key))
    bench = ServerBench(certs)
    await bench.start()
    await bench.run(SLICE)  # warm-up: imports, caches
    await asyncio.sleep(0.5)  # the warm-up's connections drain

    per_slice: list[float] = []
    bench.collections.clear()
    # A wall-clock timer (the CPU-time one ticks at the kernel's HZ, 4 ms here): the
    # process is busy throughout, and the share of the samples is what is used.
    signal.signal(signal.SIGALRM, bench.on_sample)
    bench._last_sample = time.thread_time()
    signal.setitimer(signal.ITIMER_REAL, SAMPLE_INTERVAL, SAMPLE_INTERVAL)
    try:
        for _ in range(max(1, handshakes // SLICE)):
            bench.spent = 0.0
            await bench.run(SLICE)
            per_slice.append(bench.spent / SLICE * 1e6)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    samples = bench.samples
    total_samples = sum(samples.values()) or 1
    median_us = statistics.median(per_slice)
    gc_us = bench.gc_seconds / (len(per_slice) * SLICE) * 1e6
    collections = {f"gen{g}": round(bench.collections[g] * 1000 / (len(per_slice) * SLICE), 1)
                   for g in range(3)}
    def us(n: int) -> int:
        return round((median_us - gc_us) * n / total_samples)
    parts = [{"part": part, "samples": n, "us_per_handshake": us(n),
              "functions": {w: us(k) for (p, w), k in bench.where.most_common()
                            if p == part and us(k) >= 5}}
             for part, n in samples.most_common()]
    parts.append({"part": GC_PART, "samples": None, "us_per_handshake": round(gc_us),
                  "functions": {}})

    bench.profile = cProfile.Profile()  # the calls, on a run of their own
    await bench.run(SLICE * 3)
    stats = pstats.Stats(bench.profile)
    bench.server.close()
    return {
        "handshakes": len(per_slice) * SLICE,
        "server_us_per_handshake": {"best": round(min(per_slice)), "median": round(median_us)},
        "per_core_s": {"best": round(1e6 / min(per_slice)), "median": round(1e6 / median_us)},
        "python_calls_per_handshake": round(stats.total_calls / (SLICE * 3)),
        "gc_us_per_handshake": round(gc_us),
        "gc_collections_per_1000_handshakes": collections,
        "parts": parts,
        "floor": crypto_floor(),
        "load_avg": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--handshakes", type=int, default=1500,
                        help="timed handshakes, in slices of 100 (1500)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--detail", action="store_true",
                        help="under each part, its functions of 5 us or more")
    args = parser.parse_args()
    result = asyncio.run(measure(args.handshakes))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    us = result["server_us_per_handshake"]
    print(f"server CPU per handshake: best {us['best']} us, median {us['median']} us "
          f"({result['per_core_s']['best']} / {result['per_core_s']['median']} per CPU "
          f"second); {result['python_calls_per_handshake']} Python calls per handshake; "
          f"load average {result['load_avg']}")
    print("collections per 1,000 handshakes (in the server's calls): " + ", ".join(
        f"{gen} {n}" for gen, n in result["gc_collections_per_1000_handshakes"].items()))
    print("\n| part of the server's handshake (median slice) | us per handshake |\n"
          "| --- | --- |")
    for row in result["parts"]:
        print(f"| {row['part']} | {row['us_per_handshake']} |")
        if args.detail:
            for where, us in row["functions"].items():
                print(f"| &nbsp;&nbsp;{where} | {us} |")
    floor = result["floor"]
    print("\n| cryptographic floor | per handshake | us each | us per handshake |\n"
          "| --- | --- | --- | --- |")
    for row in floor:
        print(f"| {row['operation']} | {row['per_handshake']} | {row['us_each']} | "
              f"{row['us_per_handshake']} |")
    print(f"| total | | | {sum(r['us_per_handshake'] for r in floor):.0f} |")


if __name__ == "__main__":
    main()

"""Mutational fuzzing of every parser that reads bytes from the network (outside CI).

Each target starts from real seeds (captured from an in-memory handshake and transfer,
or built with our encoders) and mutates them: bit flips, interesting bytes and varint
prefixes, inserted, deleted, duplicated and spliced ranges, truncation.  A parser may
accept the input or raise its one typed error; anything else -- another exception, a
TLS ``internal_error`` alert that hides one, or an input that takes over 50 ms -- is a
finding, saved with its bytes under ``--findings``.

Targets: packet headers (split_datagram/parse_header), QUIC frames (parse_frames),
transport parameters, TLS handshake messages (each parse_*), HTTP/3 frames
(FrameParser incl. SETTINGS), QPACK (pylsqpack header blocks and encoder stream),
capsules (CapsuleParser), and a server endpoint's routing and stateless answers
(any exception it has to log as a bug is a finding).

    python benchmarks/fuzz.py [--inputs 1000000] [--targets packet,frames,...] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Target = tuple[list[bytes], Callable[[bytes], None], tuple[type[BaseException], ...]]

SLOW = 0.05
INTERESTING = (0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF)
VARINTS = (b"\x00", b"\x3f", b"\x40\x00", b"\x7f\xff", b"\x80\x00\x00\x00",
           b"\xbf\xff\xff\xff", b"\xc0\x00\x00\x00\x00\x00\x00\x00",
           b"\xff\xff\xff\xff\xff\xff\xff\xff")


def mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        op = rng.randrange(9)
        n = len(buf)
        if op == 0 and n:
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.choice(INTERESTING)
        elif op == 2:
            pos = rng.randrange(n + 1)
            buf[pos:pos] = rng.choice(VARINTS)
        elif op == 3 and n:
            start = rng.randrange(n)
            del buf[start:start + rng.randrange(1, 16)]
        elif op == 4 and n:
            start = rng.randrange(n)
            chunk = buf[start:start + rng.randrange(1, 32)]
            pos = rng.randrange(n + 1)
            buf[pos:pos] = chunk
        elif op == 5:
            other = rng.choice(seeds)
            if other:
                start = rng.randrange(len(other))
                pos = rng.randrange(n + 1)
                buf[pos:] = other[start:start + rng.randrange(1, 64)] + buf[pos:]
        elif op == 6 and n:
            del buf[rng.randrange(n):]
        elif op == 7:
            pos = rng.randrange(n + 1)
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 8))
        elif op == 8 and n >= 2:
            pos = rng.randrange(n - 1)
            value = rng.randrange(1 << 16)
            buf[pos:pos + 2] = value.to_bytes(2, "big")
    return bytes(buf)


# -- seeds and targets -------------------------------------------------------------------


def _handshake_capture() -> dict[str, list[bytes]]:
    """Frames payloads, transport parameters and TLS messages of a real exchange."""
    import tquic.core.connection as connection_module
    import tquic.core.handshake as handshake_module
    from tquic.core.config import QuicConfiguration
    from tquic.core.connection import QuicConnection
    from tquic.crypto.tls.certs import generate_self_signed
    from tquic.paths.network_path import NetworkPath

    captured: dict[str, list[bytes]] = {"frames": [], "params": [], "datagrams": []}
    real_parse = getattr(connection_module, "parse_frames")  # noqa: B009 - patched below
    real_params = getattr(handshake_module, "decode_transport_parameters")  # noqa: B009

    def parse_frames(payload: bytes) -> object:
        captured["frames"].append(bytes(payload))
        return real_parse(payload)

    def decode_params(data: bytes) -> object:
        captured["params"].append(bytes(data))
        return real_params(data)

    setattr(connection_module, "parse_frames", parse_frames)  # noqa: B010
    setattr(handshake_module, "decode_transport_parameters", decode_params)  # noqa: B010
    try:
        cert, key = generate_self_signed()
        client = QuicConnection(QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                                  verify_peer=False, max_path_id=4,
                                                  max_datagram_frame_size=1200),
                                is_client=True)
        server = QuicConnection(QuicConfiguration(is_client=False, alpn_protocols=("hq",),
                                                  certificate=cert, private_key=key,
                                                  max_path_id=4, max_datagram_frame_size=1200),
                                is_client=False)
        cpath = NetworkPath(("127.0.0.1", 1), ("127.0.0.1", 2))
        spath = NetworkPath(("127.0.0.1", 2), ("127.0.0.1", 1))
        client.connect(cpath, 0.0)
        now = 0.0
        for step in range(30):
            if step == 4:  # after the handshake: STREAM, ACK, flow control frames
                stream = client.open_stream()
                client.send_stream_data(stream, b"x" * 5000, end_stream=True)
            for data, _ in client.datagrams_to_send(now):
                captured["datagrams"].append(data)
                server.receive_datagram(data, spath, now)
            for data, _ in server.datagrams_to_send(now):
                captured["datagrams"].append(data)
                client.receive_datagram(data, cpath, now)
            now += 0.01
    finally:
        setattr(connection_module, "parse_frames", real_parse)  # noqa: B010
        setattr(handshake_module, "decode_transport_parameters", real_params)  # noqa: B010
    return captured


def _tls_messages() -> list[tuple[int, bytes]]:
    from tquic.crypto.tls import TicketStore, TlsClient, TlsConfig, TlsServer
    from tquic.crypto.tls.certs import generate_ca, issue_certificate

    ca, ca_key = generate_ca()
    leaf, leaf_key = issue_certificate(ca, ca_key)
    client = TlsClient(TlsConfig(is_client=True, server_name="localhost", verify_peer=False,
                                 alpn_protocols=("hq",)), b"")
    server = TlsServer(TlsConfig(is_client=False, certificate_chain=(leaf,),
                                 private_key=leaf_key, alpn_protocols=("hq",)), b"",
                       TicketStore())
    client.start()
    messages: list[tuple[int, bytes]] = []
    for _ in range(6):
        for source, sink in ((client, server), (server, client)):
            for epoch, data in source.pop_output():
                pos = 0
                while pos + 4 <= len(data):
                    length = int.from_bytes(data[pos + 1:pos + 4], "big")
                    messages.append((data[pos], data[pos + 4:pos + 4 + length]))
                    pos += 4 + length
                sink.receive(epoch, data)
    return messages


def targets() -> dict[str, Target]:
    import pylsqpack

    from tquic.crypto.tls import messages as tls
    from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
    from tquic.h3.capsules import CapsuleParser, encode_capsule, encode_datagram_capsule
    from tquic.h3.errors import H3Error
    from tquic.h3.frames import FrameParser
    from tquic.wire.errors import QuicDecodeError, QuicError
    from tquic.wire.frames import parse_frames
    from tquic.wire.packet import parse_header, split_datagram
    from tquic.wire.params import decode_transport_parameters

    captured = _handshake_capture()

    def packet(data: bytes) -> None:
        for header in split_datagram(data, 8):
            if not 0 < header.packet_end <= len(data):
                raise AssertionError("packet_end outside the datagram")
        parse_header(data, len(data) // 2, 8)

    def frames(data: bytes) -> None:
        parse_frames(data)

    def params(data: bytes) -> None:
        decode_transport_parameters(data)

    parsers: list[Callable[[bytes], object]] = [
        tls.parse_client_hello, tls.parse_server_hello, tls.parse_encrypted_extensions,
        tls.parse_certificate, tls.parse_certificate_verify, tls.parse_new_session_ticket,
        tls.parse_certificate_request, lambda body: tls.parse_finished(body, 32)]
    by_type = {1: 0, 2: 1, 8: 2, 11: 3, 15: 4, 4: 5, 13: 6, 20: 7}
    tls_seeds = [bytes((by_type[t],)) + body for t, body in _tls_messages() if t in by_type]

    def tls_message(data: bytes) -> None:
        if not data:
            return
        try:
            parsers[data[0] % len(parsers)](data[1:])
        except TlsAlert as alert:
            if alert.description == AlertDescription.internal_error:
                raise AssertionError(f"internal_error alert: {alert}") from alert
            raise

    h3_seeds = [bytes.fromhex("0004") + b"\x06\x01\x40\x64\x01\x00",  # SETTINGS
                b"\x01\x05" + b"\x00\x00\xd1\xd7\x51",  # HEADERS
                b"\x00\x03abc", b"\x07\x01\x04", b"\x03\x01\x00", b"\x0d\x01\x08",
                b"\x21\x00"]

    def h3(data: bytes) -> None:
        parser = FrameParser()
        parser.feed(data[: len(data) // 2])
        parser.feed(data[len(data) // 2:])
        parser.finish()

    encoder = pylsqpack.Encoder()
    encoder.apply_settings(4096, 16)
    qpack_seeds = []
    for n, headers in enumerate(([(b":method", b"GET"), (b":path", b"/index.html"),
                                  (b":scheme", b"https"), (b":authority", b"example.com")],
                                 [(b":status", b"200"), (b"content-type", b"text/html"),
                                  (b"x-custom", b"v" * 40)])):
        enc_stream, block = encoder.encode(n * 4, headers)
        qpack_seeds += [b"\x00" + block, b"\x01" + enc_stream]

    def qpack(data: bytes) -> None:
        decoder = pylsqpack.Decoder(4096, 16)
        if data[:1] == b"\x01":
            decoder.feed_encoder(data[1:])
        else:
            decoder.feed_header(0, data[1:])

    capsule_seeds = [encode_datagram_capsule(b"payload"), encode_capsule(0x1234, b"v" * 20),
                     encode_capsule(0x02, b"\x00\x01")]

    def capsules(data: bytes) -> None:
        parser = CapsuleParser(max_capsule_size=4096)
        parser.feed(data)
        parser.finish()

    endpoint = _endpoint_target()

    qpack_errors = (pylsqpack.DecompressionFailed, pylsqpack.EncoderStreamError,
                    pylsqpack.StreamBlocked, pylsqpack.DecoderStreamError)
    return {
        "packet": (captured["datagrams"], packet, (QuicDecodeError,)),
        "frames": (captured["frames"], frames, (QuicDecodeError,)),
        "params": (captured["params"], params, (QuicError,)),
        "tls": (tls_seeds, tls_message, (TlsAlert,)),
        "h3": (h3_seeds, h3, (H3Error,)),
        "qpack": (qpack_seeds, qpack, qpack_errors),
        "capsules": (capsule_seeds, capsules, (H3Error,)),
        "endpoint": (captured["datagrams"], endpoint, ()),
    }


def _slow_again(parse: Callable[[bytes], None], data: bytes) -> bool:
    """A slow input is a finding only if it is slow every time (not the machine's load)."""
    for _ in range(3):
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):  # its kind was judged already
            parse(data)
        if time.perf_counter() - t0 <= SLOW:
            return False
    return True


def _endpoint_target() -> Callable[[bytes], None]:
    """Feed a server QuicEndpoint (Retry always, sends discarded); a bug it catches and
    logs with a traceback is re-raised here as a finding."""
    import asyncio
    import logging

    from tquic.core.config import QuicConfiguration
    from tquic.crypto.tls.certs import generate_self_signed
    from tquic.io.admission import EndpointLimits
    from tquic.io.endpoint import QuicEndpoint
    from tquic.io.udp import UdpSocket

    class Bugs(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                self.records.append(record)

    bugs = Bugs()
    io_logger = logging.getLogger("tquic.io")
    io_logger.addHandler(bugs)
    io_logger.setLevel(logging.DEBUG)
    io_logger.propagate = False
    cert, key = generate_self_signed()
    config = QuicConfiguration(is_client=False, certificate=cert, private_key=key,
                               alpn_protocols=("hq",))
    class Silent(UdpSocket):  # answers are built, then discarded
        def send(self, data: bytes, addr: tuple[str, int], ecn: int = 0) -> bool:
            return True

        def send_batch(self, datagrams: Any, addr: tuple[str, int], ecn: int = 0,
                       source: str | None = None) -> int:
            return len(datagrams)

    loop = asyncio.new_event_loop()
    sock = Silent.bind("127.0.0.1", 0)
    endpoint = QuicEndpoint(config, [sock], is_server=True, loop=loop,
                            limits=EndpointLimits(retry="always", initials_per_prefix=1e9,
                                                  stateless_packets_per_second=1e9,
                                                  stateless_per_prefix=1e9))

    def feed(data: bytes) -> None:
        endpoint.datagram_received(data, ("127.0.0.1", 4433))
        if bugs.records:
            record = bugs.records.pop()
            bugs.records.clear()
            raise AssertionError(f"endpoint bug: {record.exc_info[1]!r}"
                                 if record.exc_info else record.getMessage())

    return feed


def run(name: str, target: Target, inputs: int, seed: int,
        findings_dir: Path) -> dict[str, object]:
    seeds, parse, allowed = target
    rng = random.Random(seed)
    findings: dict[str, int] = {}
    accepted = 0
    start = time.perf_counter()
    for n in range(inputs):
        data = mutate(rng.choice(seeds), seeds, rng) if n % 64 else rng.randbytes(
            rng.randrange(64))
        t0 = time.perf_counter()
        try:
            parse(data)
            accepted += 1
        except allowed:
            pass
        except Exception as exc:  # a finding: save it once per (type, message)
            key = f"{type(exc).__name__}: {str(exc)[:80]}"
            if key not in findings:
                findings_dir.mkdir(parents=True, exist_ok=True)
                (findings_dir / f"{name}-{len(findings)}.bin").write_bytes(data)
                print(f"  finding in {name}: {key}", file=sys.stderr)
            findings[key] = findings.get(key, 0) + 1
        if time.perf_counter() - t0 > SLOW and _slow_again(parse, data):
            findings["slow input"] = findings.get("slow input", 0) + 1
            findings_dir.mkdir(parents=True, exist_ok=True)
            (findings_dir / f"{name}-slow-{n}.bin").write_bytes(data)
    seconds = time.perf_counter() - start
    return {"target": name, "inputs": inputs, "seconds": round(seconds, 1),
            "per_s": round(inputs / seconds), "accepted_pct": round(100 * accepted / inputs, 1),
            "findings": sum(findings.values()), "kinds": findings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=1_000_000, help="per target")
    parser.add_argument("--targets", default="", help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--findings", default="fuzz-findings", help="where to save inputs")
    args = parser.parse_args()
    table = targets()
    chosen = [t for t in args.targets.split(",") if t] or list(table)
    unknown = [t for t in chosen if t not in table]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {list(table)}")
    print("| parser | inputs | seconds | inputs/s | accepted % | findings |")
    print("| --- | --- | --- | --- | --- | --- |")
    total = 0
    for name in chosen:
        row = run(name, table[name], args.inputs, args.seed, Path(args.findings))
        total += int(row["findings"])  # type: ignore[call-overload]
        print(f"| {name} | {row['inputs']:,} | {row['seconds']} | {row['per_s']:,} | "
              f"{row['accepted_pct']} | {row['findings']} {row['kinds'] or ''} |", flush=True)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())

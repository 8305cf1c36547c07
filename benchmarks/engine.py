"""Engine throughput: two QuicConnections in memory (no sockets, no simulator),
one bulk stream from client to server; prints MB of stream data moved per CPU
second (time.process_time, both engines together).

    python benchmarks/engine.py            # 32 MiB
    python benchmarks/engine.py --quick    # 4 MiB
    python benchmarks/engine.py --profile  # with pyinstrument
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections import deque

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import StreamDataReceived
from tquic.core.network_path import NetworkPath

CLIENT = NetworkPath(("10.0.0.1", 1000), ("10.0.0.2", 443))
SERVER = NetworkPath(("10.0.0.2", 443), ("10.0.0.1", 1000))


def _cert() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def run(size: int) -> tuple[float, float]:
    """(MB/s per CPU second, virtual seconds) for a ``size``-byte transfer."""
    cert, key = _cert()
    big = {"initial_max_data": 8 << 20, "max_data": 64 << 20,
           "initial_max_stream_data": 8 << 20, "max_stream_data": 64 << 20,
           "max_udp_payload_size": 1452}
    client = QuicConnection(QuicConfiguration(is_client=True, verify_peer=False,
                                              alpn_protocols=("bench",), **big))
    server = QuicConnection(QuicConfiguration(is_client=False, alpn_protocols=("bench",),
                                              certificate=cert, private_key=key, **big))
    now = 0.0
    delay = 0.005
    client.connect(CLIENT, now)
    wire: deque[tuple[float, QuicConnection, bytes, NetworkPath]] = deque()
    received = 0
    done = False
    started = False
    chunk = b"\xa5" * (1 << 20)
    cpu0 = 0.0
    sid = -1
    while not done:
        for conn, peer, path in ((client, server, SERVER), (server, client, CLIENT)):
            for data, _ in conn.datagrams_to_send(now):
                wire.append((now + delay, peer, data, path))
        for conn in (client, server):
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamDataReceived):
                    received += len(event.data)
                    done = event.end_stream
        if client.handshake_complete and not started:
            started = True
            cpu0 = time.process_time()
            sid = client.open_stream()
            for _ in range(size // len(chunk)):
                client.send_stream_data(sid, chunk)
            client.send_stream_data(sid, b"", end_stream=True)
            continue
        times = [wire[0][0]] if wire else []  # constant delay: the wire is FIFO
        for conn in (client, server):
            timeout = conn.next_timeout()
            if timeout is not None:
                times.append(timeout)
        if not times:
            break
        now = max(now, min(times))
        while wire and wire[0][0] <= now:
            _, conn, data, path = wire.popleft()
            conn.receive_datagram(data, path, now)
        for conn in (client, server):
            timeout = conn.next_timeout()
            if timeout is not None and timeout <= now:
                conn.handle_timeout(now)
    cpu = time.process_time() - cpu0
    if received != size:
        raise SystemExit(f"transfer incomplete: {received} of {size} bytes")
    return size / 1e6 / cpu, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 MiB instead of 32 MiB")
    parser.add_argument("--profile", action="store_true", help="profile with pyinstrument")
    args = parser.parse_args()
    size = (4 if args.quick else 32) << 20
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
        rate, virtual = run(size)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        rate, virtual = run(size)
    print(f"engine bulk transfer: {size >> 20} MiB, {rate:.1f} MB per CPU-second "
          f"(both engines), {virtual:.3f} s virtual")


if __name__ == "__main__":
    main()

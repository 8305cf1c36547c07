"""Engine throughput: two QuicConnections in memory (no sockets, no simulator),
one bulk stream from client to server; prints MB of stream data moved per CPU
second (time.process_time, both engines together).

    python benchmarks/engine.py            # 32 MiB
    python benchmarks/engine.py --quick    # 4 MiB
    python benchmarks/engine.py --profile  # with pyinstrument
    python benchmarks/engine.py --quick --calls   # Python function calls of the
        transfer (cProfile): a figure that does not move with the machine's load
    python benchmarks/engine.py --min-ack-delay 1   # both ends advertise min_ack_delay
        (1 ms): the sender asks for fewer ACKs with ACK_FREQUENCY
    python benchmarks/engine.py --min-ack-delay 1 --no-ack-frequency   # the same
        transport parameters, no ACK_FREQUENCY sent (the baseline for the above)
    python benchmarks/engine.py --rate 200 ...      # a 200 Mbit/s link each way:
        datagrams arrive spread out as behind a real bottleneck, so the receiver
        acknowledges per packet pair instead of once per burst
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import pstats
import time
from collections import deque
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import StreamDataReceived
from tquic.paths.network_path import NetworkPath

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


def run(size: int, min_ack_delay: float | None = None, ack_frequency: bool = True,
        rate_mbit: float | None = None,
        profile: cProfile.Profile | None = None) -> tuple[float, float, int, int]:
    """(MB/s per CPU second, virtual seconds, datagrams client->server, datagrams
    server->client) for a ``size``-byte transfer.  ``rate_mbit``: each direction is a
    link of that rate (datagrams serialised one after another), else unlimited.
    ``profile`` is enabled for the transfer only (not the handshake)."""
    cert, key = _cert()
    big: dict[str, Any] = {
        "initial_max_data": 8 << 20, "max_data": 64 << 20,
        "initial_max_stream_data": 8 << 20, "max_stream_data": 64 << 20,
        "max_udp_payload_size": 1452, "min_ack_delay": min_ack_delay,
        "request_ack_frequency": ack_frequency}
    client = QuicConnection(QuicConfiguration(is_client=True, verify_peer=False,
                                              alpn_protocols=("bench",), **big))
    server = QuicConnection(QuicConfiguration(is_client=False, alpn_protocols=("bench",),
                                              certificate=cert, private_key=key, **big))
    now = 0.0
    delay = 0.005
    client.connect(CLIENT, now)
    # One FIFO per direction: arrival times only grow within a direction.
    # (arrival, receiver, datagram, path, ECN codepoint): marks arrive as sent (RFC 9000
    # §13.4), so the engine runs with ECN validated, as on an ECN-capable network.
    up: deque[tuple[float, QuicConnection, bytes, NetworkPath, int]] = deque()
    down: deque[tuple[float, QuicConnection, bytes, NetworkPath, int]] = deque()
    link_free = {id(client): 0.0, id(server): 0.0}
    per_bit = 0.0 if rate_mbit is None else 1.0 / (rate_mbit * 1e6)
    received = 0
    done = False
    started = False
    chunk = b"\xa5" * (1 << 20)
    cpu0 = 0.0
    sid = -1
    counts = {id(client): 0, id(server): 0}
    while not done:
        for conn, peer, path, wire in ((client, server, SERVER, up),
                                       (server, client, CLIENT, down)):
            datagrams = conn.datagrams_to_send(now)
            ecn = conn.ecn_codepoint(datagrams[0][1]) if datagrams else 0
            for data, _ in datagrams:
                if per_bit:
                    free = max(now, link_free[id(conn)]) + len(data) * 8 * per_bit
                    link_free[id(conn)] = free
                    wire.append((free + delay, peer, data, path, ecn))
                else:
                    wire.append((now + delay, peer, data, path, ecn))
                if started:
                    counts[id(conn)] += 1
        for conn in (client, server):
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamDataReceived):
                    received += len(event.data)
                    done = event.end_stream
        if client.handshake_complete and not started:
            started = True
            cpu0 = time.process_time()
            if profile is not None:
                profile.enable()
            sid = client.open_stream()
            for _ in range(size // len(chunk)):
                client.send_stream_data(sid, chunk)
            client.send_stream_data(sid, b"", end_stream=True)
            continue
        times = [w[0][0] for w in (up, down) if w]
        for conn in (client, server):
            timeout = conn.next_timeout()
            if timeout is not None:
                times.append(timeout)
        if not times:
            break
        now = max(now, min(times))
        while (up and up[0][0] <= now) or (down and down[0][0] <= now):
            wire = up if up and (not down or up[0][0] <= down[0][0]) else down
            _, conn, data, path, ecn = wire.popleft()
            conn.receive_datagram(data, path, now, ecn=ecn)
        for conn in (client, server):
            timeout = conn.next_timeout()
            if timeout is not None and timeout <= now:
                conn.handle_timeout(now)
    cpu = time.process_time() - cpu0
    if profile is not None:
        profile.disable()
    if received != size:
        raise SystemExit(f"transfer incomplete: {received} of {size} bytes")
    return size / 1e6 / cpu, now, counts[id(client)], counts[id(server)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 MiB instead of 32 MiB")
    parser.add_argument("--profile", action="store_true", help="profile with pyinstrument")
    parser.add_argument("--min-ack-delay", type=float, default=None, metavar="MS",
                        help="min_ack_delay both ends advertise (enables ACK_FREQUENCY)")
    parser.add_argument("--rate", type=float, default=None, metavar="MBIT",
                        help="link rate each way (datagrams arrive spread out, as "
                        "through a bottleneck) instead of unlimited")
    parser.add_argument("--no-ack-frequency", action="store_true",
                        help="never send ACK_FREQUENCY (request_ack_frequency=False)")
    parser.add_argument("--calls", action="store_true",
                        help="count the Python function calls of the transfer (cProfile) "
                        "instead of timing it: a figure independent of the machine's load")
    args = parser.parse_args()
    size = (4 if args.quick else 32) << 20
    mad = None if args.min_ack_delay is None else args.min_ack_delay / 1000.0
    afq = not args.no_ack_frequency
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
        rate, virtual, up, down = run(size, mad, afq, args.rate)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    elif args.calls:
        counter = cProfile.Profile()
        _, virtual, up, down = run(size, mad, afq, args.rate, counter)
        calls = pstats.Stats(counter).total_calls  # type: ignore[attr-defined]
        print(f"engine bulk transfer: {size >> 20} MiB, {calls} Python function calls "
              f"(both engines), {virtual:.3f} s virtual, datagrams {up} up / {down} down")
        return
    else:
        rate, virtual, up, down = run(size, mad, afq, args.rate)
    print(f"engine bulk transfer: {size >> 20} MiB, {rate:.1f} MB per CPU-second "
          f"(both engines), {virtual:.3f} s virtual, datagrams {up} up / {down} down")


if __name__ == "__main__":
    main()

"""``tquic client --webtransport URL``: exercise a WebTransport echo endpoint.

Opens one session to URL (e.g. ``tquic server --webtransport-echo /echo``), sends
datagrams and streams, and checks that every echo comes back byte-for-byte:
datagrams (unreliable: a missing echo is reported, a wrong one is an error),
bidirectional streams echoed on the same stream, one unidirectional stream
echoed on a new one.  Exit status 0 when every stream matched and at least one
datagram came back.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from typing import Any

from tquic.cli.common import CliError

PROG = "tquic client"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("WebTransport (with --webtransport)")
    group.add_argument("--webtransport", action="store_true",
                       help="treat the URL as a WebTransport echo endpoint (tquic server "
                            "--webtransport-echo PATH): send datagrams and streams, check "
                            "every echo")
    group.add_argument("--wt-datagrams", type=int, default=100, metavar="N",
                       help="datagrams to send (default 100)")
    group.add_argument("--wt-streams", type=int, default=10, metavar="N",
                       help="bidirectional streams to send (default 10)")
    group.add_argument("--wt-stream-size", type=int, default=100_000, metavar="BYTES",
                       help="bytes per stream (default 100000)")


def payload(index: int, size: int) -> bytes:
    """Stream ``index``'s bytes: recognisable, different per stream."""
    pattern = bytes((index * 31 + j * 7) & 0xFF for j in range(256))
    return (pattern * (size // 256 + 1))[:size]


def run(args: argparse.Namespace, config: Any) -> int:
    if len(args.urls) != 1:
        raise CliError("--webtransport takes exactly one URL (https://HOST:PORT/PATH)")
    for name in ("wt_datagrams", "wt_streams", "wt_stream_size"):
        if getattr(args, name) < 0:
            raise CliError(f"--{name.replace('_', '-')} must not be negative")
    config = dataclasses.replace(config, alpn_protocols=("h3",), max_datagram_frame_size=65535)
    try:
        result = asyncio.run(asyncio.wait_for(_exercise(args, config), args.timeout + 30))
    except TimeoutError:
        raise CliError(f"no answer from {args.urls[0]} in time (--timeout)") from None
    except ConnectionError as exc:
        raise CliError(f"{args.urls[0]}: {exc}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0 if result["ok"] else 1


async def _exercise(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    from tquic.h3.webtransport import connect_webtransport

    url = args.urls[0]
    session = await connect_webtransport(url, config, timeout=args.timeout)
    async with session:
        datagrams = await _datagrams(session, args.wt_datagrams, args.timeout)
        start = time.monotonic()
        checks = await asyncio.gather(*(_bidi(session, i, args.wt_stream_size)
                                        for i in range(args.wt_streams)))
        elapsed = time.monotonic() - start
        uni_ok = await _uni(session, args.wt_stream_size)
    moved = 2 * args.wt_streams * args.wt_stream_size
    streams_ok = sum(checks)
    return {
        "url": url, "draft": session.version.value,
        "datagrams": datagrams,
        "streams": {"sent": args.wt_streams, "echoed_ok": streams_ok,
                    "bytes_each": args.wt_stream_size, "seconds": round(elapsed, 4),
                    "mbps": round(moved * 8 / elapsed / 1e6, 2) if elapsed > 0 else None},
        "unidirectional_ok": uni_ok,
        "ok": streams_ok == args.wt_streams and uni_ok
              and (args.wt_datagrams == 0 or datagrams["echoed"] > 0)
              and datagrams["wrong"] == 0,
    }


async def _datagrams(session: Any, count: int, timeout: float) -> dict[str, Any]:
    sent: dict[bytes, float] = {}
    rtts: list[float] = []
    wrong = 0

    async def receive() -> None:
        nonlocal wrong
        while len(rtts) + wrong < count:
            data = await session.datagrams.receive()
            started = sent.pop(data, None)
            if started is None:
                wrong += 1
            else:
                rtts.append(time.monotonic() - started)

    receiver = asyncio.ensure_future(receive())
    for i in range(count):
        data = b"tquic datagram %06d " % i + bytes(range(32))
        sent[data] = time.monotonic()
        session.datagrams.send(data)
        await asyncio.sleep(0.001)  # a paced trickle, not a burst into the send queue
    await asyncio.wait({receiver}, timeout=min(timeout, 2.0))
    receiver.cancel()
    rtts.sort()
    return {"sent": count, "echoed": len(rtts), "wrong": wrong,
            "rtt_ms_p50": round(statistics.median(rtts) * 1000, 3) if rtts else None,
            "rtt_ms_max": round(rtts[-1] * 1000, 3) if rtts else None}


async def _bidi(session: Any, index: int, size: int) -> bool:
    data = payload(index, size)
    stream = await session.create_bidirectional_stream()
    await stream.write(data)
    stream.close()
    echo: bytes = await stream.read_all(size + 1)
    return hashlib.sha256(echo).digest() == hashlib.sha256(data).digest()


async def _uni(session: Any, size: int) -> bool:
    data = payload(255, size)
    stream = await session.create_unidirectional_stream()
    await stream.write_all_and_close(data)
    back = await session.incoming_unidirectional_streams.accept()
    echo: bytes = await back.read_all(size + 1)
    return echo == data


def _print(result: dict[str, Any]) -> None:
    d, s = result["datagrams"], result["streams"]
    print(f"{result['url']}: WebTransport ({result['draft']})")
    print(f"  datagrams: {d['echoed']}/{d['sent']} echoed, {d['wrong']} wrong, "
          f"RTT p50 {d['rtt_ms_p50']} ms, max {d['rtt_ms_max']} ms")
    print(f"  streams:   {s['echoed_ok']}/{s['sent']} x {s['bytes_each']} bytes echoed intact "
          f"in {s['seconds']} s ({s['mbps']} Mbit/s both ways)")
    print(f"  unidirectional stream echoed on a new stream: "
          f"{'ok' if result['unidirectional_ok'] else 'MISMATCH'}")
    print("OK" if result["ok"] else "FAILED", file=sys.stderr)

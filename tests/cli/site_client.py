"""Talking to a running ``tquic server`` from a test: HTTP/3 requests with any header
fields, raw (even malformed) HTTP/3 header sections, and hq-interop requests that
report how their stream ended.  Shared by the static-server tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pylsqpack

from tquic.core.config import QuicConfiguration
from tquic.h3.aio import connect_h3
from tquic.h3.messages import Response
from tquic.io.api import connect
from tquic.io.streams import StreamError
from tquic.wire.buffer import encode_varint


@dataclass(frozen=True, slots=True)
class Site:
    port: int
    root: Path
    log: Path  # the server's stdout: its access log
    pid: int

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@contextmanager
def running_site(cert_dir: Path, root: Path, log: Path, *extra: str,
                 listen: str = "127.0.0.1:0") -> Iterator[Site]:
    """``tquic server --root ROOT`` with its stdout (access log) in ``log``."""
    argv = [sys.executable, "-m", "tquic", "server", "--listen", listen, "--cert",
            str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"), "--root", str(root),
            *extra]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "]:" in line, line
        yield Site(int(line.rsplit("]:", 1)[1].split()[0]), root, log, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for_log(site: Site, count: int, timeout: float = 5.0) -> list[str]:
    """The access log once it has at least ``count`` lines (it is written as requests end)."""
    deadline = time.monotonic() + timeout
    while len(lines := site.log_lines()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return lines


def h3_requests(port: int, requests: Sequence[tuple[str, str, dict[str, str]]],
                timeout: float = 20) -> list[Response]:
    """(method, path, header fields) each, on one HTTP/3 connection, in order."""

    async def main() -> list[Response]:
        client = await connect_h3("127.0.0.1", port, QuicConfiguration(verify_peer=False),
                                  timeout=5)
        async with client:
            return [await client.request(method, f"https://127.0.0.1:{port}{path}", headers)
                    for method, path, headers in requests]

    return asyncio.run(asyncio.wait_for(main(), timeout))


def raw_h3(port: int, sections: Sequence[list[tuple[bytes, bytes]]],
           timeout: float = 20) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    """Send each header section as-is (no validation: malformed on purpose) on its own
    request stream; returns each response's header fields and body."""

    async def one(conn: object, section: list[tuple[bytes, bytes]]
                  ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        reader, writer = await conn.open_stream()  # type: ignore[attr-defined]
        encoder = pylsqpack.Encoder()  # no dynamic table: the server's SETTINGS need not come
        _, block = encoder.encode(reader.stream_id, section)
        writer.write(encode_varint(1) + encode_varint(len(block)) + block)
        writer.write_eof()
        data = await reader.read()
        return _parse_response(data, reader.stream_id)

    async def main() -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
        config = QuicConfiguration(alpn_protocols=("h3",), verify_peer=False)
        conn = await connect("127.0.0.1", port, config, timeout=5)
        async with conn:
            return [await one(conn, section) for section in sections]

    return asyncio.run(asyncio.wait_for(main(), timeout))


def _parse_response(data: bytes, stream_id: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    from tquic.h3.frames import pull_varint

    decoder = pylsqpack.Decoder(0, 0)
    headers: list[tuple[bytes, bytes]] = []
    body = b""
    offset = 0
    while offset < len(data):
        kind, offset = pull_varint(data, offset)
        length, offset = pull_varint(data, offset)
        payload = data[offset:offset + length]
        offset += length
        if kind == 1 and not headers:
            _, headers = decoder.feed_header(stream_id, payload)
        elif kind == 0:
            body += payload
    return list(headers), body


@dataclass(frozen=True, slots=True)
class HqResult:
    data: bytes
    reset_code: int | None  # the RESET_STREAM error code, None after a FIN
    seconds: float  # request sent to stream ended


def hq_requests(port: int, paths: Sequence[str], timeout: float = 20) -> list[HqResult]:
    """``GET path`` each over hq-interop, one after the other on one connection."""

    async def main() -> list[HqResult]:
        config = QuicConfiguration(alpn_protocols=("hq-interop",), verify_peer=False)
        conn = await connect("127.0.0.1", port, config, timeout=5)
        results = []
        async with conn:
            for path in paths:
                started = time.perf_counter()
                reader, writer = await conn.open_stream()
                writer.write(f"GET {path}\r\n".encode())
                writer.write_eof()
                data, code = b"", None
                try:
                    while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
                        data += chunk
                except StreamError as exc:
                    code = exc.error_code
                results.append(HqResult(data, code, time.perf_counter() - started))
        return results

    return asyncio.run(asyncio.wait_for(main(), timeout))

"""``tquic proxy`` and ``tquic proxy-client`` as a user runs them: a DNS query and an
``iperf3 -u`` run through the proxy on loopback, a denied target (403, nothing sent) and a
missing token (401) reported in one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import tquic

from tquic.testing.dns_stub import dns_answer_address, dns_query, dns_responder


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Until a TCP socket listens on ``port`` (read from /proc: a probe connection would
    be taken by ``iperf3 -s -1`` as its one client)."""
    deadline = time.monotonic() + timeout
    needle = f":{port:04X} 00000000:0000 0A"
    while time.monotonic() < deadline:
        if needle in Path("/proc/net/tcp").read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on TCP port {port}")


@contextlib.contextmanager
def process(argv: list[str], ready: str) -> Iterator[subprocess.Popen[str]]:
    """Start ``argv``; wait for ``ready`` on its stderr (its first line), stop it after."""
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert ready in line, f"{argv[3:5]}: {line}{proc.stderr.read() if proc.poll() else ''}"
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def proxy_argv(cert_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tquic", "proxy", "--listen", "127.0.0.1:0",
            "--cert", str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"), *extra]


@contextlib.contextmanager
def proxy_on_port(cert_dir: Path, *extra: str) -> Iterator[int]:
    proc = subprocess.Popen(proxy_argv(cert_dir, *extra), stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"\]:(\d+)", line)
        assert match is not None, line
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(10)


def client_argv(local: int, target: str, proxy_port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tquic", "proxy-client", "--local", f"127.0.0.1:{local}",
            "--target", target, "--proxy", f"https://127.0.0.1:{proxy_port}", "--insecure",
            *extra]


def udp_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        return sock.recv(2048)


async def _tcp_forward(listen_port: int, target_port: int, stop: asyncio.Event,
                       listening: asyncio.Event) -> None:
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    listening.set()
    async with server:
        await stop.wait()


def test_dns_query_through_proxy_client_and_proxy(cert_dir: Path) -> None:
    async def main() -> None:
        transport, responder, dns_port = await dns_responder()
        local = free_port()
        try:
            with proxy_on_port(cert_dir, "--allow", "127.0.0.0/8", "--token", "s3cret") as port:
                argv = client_argv(local, f"127.0.0.1:{dns_port}", port, "--token", "s3cret")
                with process(argv, "listening on"):
                    reply = await asyncio.to_thread(udp_exchange, local, dns_query("example.test"))
            assert dns_answer_address(reply) == "192.0.2.7"
            assert len(responder.queries) == 1
        finally:
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 40))


def test_refusals_are_one_line_errors_and_nothing_reaches_a_denied_target(cert_dir: Path) -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(0.3)
    target_port = target.getsockname()[1]
    with target, proxy_on_port(cert_dir, "--token", "s3cret") as port:
        no_token = tquic(*client_argv(free_port(), f"127.0.0.1:{target_port}", port)[3:],
                         timeout=30)
        assert no_token.returncode == 1 and "status 401" in no_token.stderr
        assert "--token" in no_token.stderr and "Traceback" not in no_token.stderr
        denied = tquic(*client_argv(free_port(), f"127.0.0.1:{target_port}", port,
                                    "--token", "s3cret")[3:], timeout=30)
        assert denied.returncode == 1 and "status 403" in denied.stderr
        assert "destination_ip_prohibited" in denied.stderr
        with pytest.raises(TimeoutError):
            target.recv(100)


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")
def test_iperf3_udp_through_the_proxy(cert_dir: Path) -> None:
    iperf_port = free_port(socket.SOCK_STREAM)
    local = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(iperf_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(iperf_port)

    async def main() -> dict[str, object]:
        stop = asyncio.Event()
        # iperf3's control channel is TCP on the same port number; only its UDP data goes
        # through the CONNECT-UDP forwarder, so the control connection is relayed here.
        listening = asyncio.Event()
        forward = asyncio.ensure_future(_tcp_forward(local, iperf_port, stop, listening))
        # listening before iperf3 connects: the blocking setup below would otherwise keep
        # the forwarder from starting until iperf3 was already connecting (refused)
        await asyncio.wait_for(listening.wait(), 10)
        try:
            with proxy_on_port(cert_dir, "--allow", "127.0.0.0/8") as port, process(
                    client_argv(local, f"127.0.0.1:{iperf_port}", port), "listening on"):
                result = await asyncio.to_thread(subprocess.run, [
                    "iperf3", "-c", "127.0.0.1", "-p", str(local), "-u", "-b", "2M",
                    "-l", "1000", "-t", "2", "--json"], capture_output=True, text=True,
                    timeout=30)
            report: dict[str, object] = json.loads(result.stdout)
            return report
        finally:
            stop.set()
            await forward

    try:
        report = asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        server.kill()
        server.wait(5)
    assert "error" not in report, report.get("error")
    summary = report["end"]["sum"]  # type: ignore[index]
    assert summary["packets"] > 400, summary
    assert summary["lost_percent"] < 25, summary

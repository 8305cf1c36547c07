"""HTTP/3 interop with ngtcp2 (Debian's gtlsserver/gtlsclient: ngtcp2 + nghttp3 + GnuTLS).

Both directions over loopback, every body checked by sha256:

- our client (the ``tquic client`` HTTP/3 code, ``tquic.cli.h3_fetch``) downloads from
  ``gtlsserver -d DIR``: 1 KB, 10 MB, 20 files at once; 404 and generated ``/N``;
  ChaCha20-only server; Retry (``--validate-addr``); session resumption; a key update we
  start mid-transfer;
- ``gtlsclient --exit-on-all-streams-close --download DIR`` downloads the same from our
  server (``tquic server``'s HTTP/3 handler on ``tquic.io``): the same sizes; ChaCha20 only
  (``--ciphers``); our Retry; resumption (``--session-file``); 0-RTT (``--tp-file`` +
  session file); a key update (``--key-update``); client migration (``--change-local-addr``).

The last two tests run the ``tquic server`` / ``tquic client`` commands themselves.

The tools are optional: without them (``apt-get install ngtcp2-client ngtcp2-server``) the
tests skip with that reason.  Every test bounds its time and kills what it started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tquic.cli.client import Fetch
from tquic.cli.h3_fetch import fetch_group_h3
from tquic.cli.h3_files import H3FileHandler, dispatch_by_alpn
from tquic.cli.hq import HqServer
from tquic.core.config import QuicConfiguration
from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls.certs import generate_self_signed
from tquic.crypto.tls.tickets import TicketStore
from tquic.h3.aio import connect_h3
from tquic.io.api import QuicServer, serve

pytestmark = pytest.mark.interop

GTLSSERVER = shutil.which("gtlsserver") or (
    "/usr/sbin/gtlsserver" if os.access("/usr/sbin/gtlsserver", os.X_OK) else None)
GTLSCLIENT = shutil.which("gtlsclient") or (
    "/usr/bin/gtlsclient" if os.access("/usr/bin/gtlsclient", os.X_OK) else None)
needs_server = pytest.mark.skipif(
    GTLSSERVER is None, reason="ngtcp2's gtlsserver not installed (apt-get install ngtcp2-server)")
needs_client = pytest.mark.skipif(
    GTLSCLIENT is None, reason="ngtcp2's gtlsclient not installed (apt-get install ngtcp2-client)")

CHACHA_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305"
CONCURRENT = [f"many_{i:02d}.bin" for i in range(20)]
CASES = {"1KB": ["1k.bin"], "10MB": ["10m.bin"], "20x": CONCURRENT}


@dataclasses.dataclass(frozen=True)
class Site:
    root: Path
    cert: Path
    key: Path
    digests: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("ngtcp2")
    cert, key = generate_self_signed()
    (base / "cert.pem").write_bytes(cert)
    (base / "key.pem").write_bytes(key)
    root = base / "www"
    root.mkdir()
    files = {"1k.bin": 1000, "10m.bin": 10_000_000}
    files.update({name: 20_000 + 1000 * i for i, name in enumerate(CONCURRENT)})
    digests = {}
    for name, size in files.items():
        data = os.urandom(size)
        (root / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return Site(root, base / "cert.pem", base / "key.pem", digests)


def run(coro: Awaitable[None], timeout: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(bounded())


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_listening(port: int) -> bool:
    needle = f":{port:04X} "
    try:
        with open("/proc/net/udp") as table:
            return any(needle in line.split(None, 3)[1] + " " for line in table.readlines()[1:])
    except OSError:
        return True  # no /proc: fall back to the caller's timeout


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


# -- our client <- gtlsserver ---------------------------------------------------------------


@asynccontextmanager
async def ngtcp2_server(site: Site, *flags: str, log: Path | None = None) -> AsyncIterator[int]:
    """gtlsserver on a free port; with ``log``, its packet/frame log goes to that file."""
    assert GTLSSERVER is not None
    port = free_udp_port()
    verbosity = ("--no-quic-dump", "--no-http-dump") if log is not None else ("-q",)
    sink = open(log, "wb") if log is not None else None  # noqa: SIM115 (closed below)
    proc = await asyncio.create_subprocess_exec(
        GTLSSERVER, *verbosity, "-d", str(site.root), *flags, "127.0.0.1", str(port),
        str(site.key), str(site.cert),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=sink if sink is not None else asyncio.subprocess.PIPE)
    try:
        for _ in range(100):
            if _udp_listening(port) or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        if proc.returncode is not None:
            why = (await proc.stderr.read()).decode()[-500:] if proc.stderr is not None else ""
            pytest.fail(f"gtlsserver exited: {why}")
        yield port
    finally:
        await _stop(proc)
        if sink is not None:
            sink.close()


def client_config(site: Site, **changes: Any) -> QuicConfiguration:
    base = QuicConfiguration(is_client=True, alpn_protocols=("h3",), cafile=str(site.cert),
                             server_name="localhost", max_data=64 << 20,
                             max_stream_data=32 << 20)
    return dataclasses.replace(base, **changes)


async def fetch(site: Site, port: int, names: list[str], config: QuicConfiguration,
                tmp_path: Path) -> None:
    fetches = [Fetch(url=f"https://localhost:{port}/{n}", host="127.0.0.1", port=port,
                     path=f"/{n}") for n in names]
    await fetch_group_h3(config, "127.0.0.1", port, fetches, tmp_path, timeout=10.0)
    for name, result in zip(names, fetches, strict=True):
        assert result.error is None, f"{name}: {result.error}"
        assert result.sha256 == site.digests[name], name
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == site.digests[name]


@needs_server
@pytest.mark.parametrize("case", list(CASES))
def test_tquic_client_downloads_from_ngtcp2(site: Site, case: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with ngtcp2_server(site) as port:
            await fetch(site, port, CASES[case], client_config(site), tmp_path)

    run(main())


@needs_server
def test_tquic_client_gets_404_and_generated_bytes_from_ngtcp2(site: Site) -> None:
    async def main() -> None:
        async with ngtcp2_server(site) as port:
            client = await connect_h3("127.0.0.1", port, client_config(site), timeout=5)
            async with client:
                missing = await client.request("GET", f"https://localhost:{port}/missing")
                generated = await client.request("GET", f"https://localhost:{port}/12345")
            assert missing.status == 404
            assert generated.status == 200 and len(generated.body) == 12345
            assert generated.header("content-length") == b"12345"

    run(main())


@needs_server
def test_tquic_client_with_chacha20_only_ngtcp2(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with ngtcp2_server(site, f"--ciphers={CHACHA_ONLY}") as port:
            client = await connect_h3("127.0.0.1", port, client_config(site), timeout=5)
            async with client:
                reply = await client.request("GET", f"https://localhost:{port}/1k.bin")
                suite = client.protocol.quic.cipher_suite
            assert hashlib.sha256(reply.body).hexdigest() == site.digests["1k.bin"]
            assert suite == CipherSuite.CHACHA20_POLY1305_SHA256

    run(main())


@needs_server
def test_tquic_client_follows_ngtcp2_retry(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with ngtcp2_server(site, "--validate-addr") as port:
            await fetch(site, port, ["1k.bin"], client_config(site), tmp_path)

    run(main())


@needs_server
def test_tquic_client_resumes_an_ngtcp2_session_with_0rtt_request(site: Site,
                                                                  tmp_path: Path) -> None:
    log = tmp_path / "gtlsserver.log"

    async def main() -> None:
        async with ngtcp2_server(site, log=log) as port:
            url = f"https://localhost:{port}/1k.bin"
            first = await connect_h3("127.0.0.1", port, client_config(site), timeout=5)
            async with first:
                await first.request("GET", url)
                for _ in range(50):
                    if first.protocol.session_ticket is not None:
                        break
                    await asyncio.sleep(0.02)
                ticket = first.protocol.session_ticket
            assert ticket is not None, "ngtcp2 sent no NewSessionTicket"
            config = client_config(site, session_ticket=ticket, enable_early_data=True)
            second = await connect_h3("127.0.0.1", port, config, timeout=5)
            async with second:
                reply = await second.request("GET", url)
                assert second.protocol.session_resumed
                assert second.protocol.early_data_accepted  # TLS accepted our early data
            assert hashlib.sha256(reply.body).hexdigest() == site.digests["1k.bin"]

    run(main())
    # ngtcp2's own log: the second connection's request (stream 0, with FIN) arrived in a
    # 0-RTT packet; the first connection's went in 1-RTT.
    text = log.read_text(errors="replace")
    assert len(re.findall(r"frm rx \d+ 0RTT STREAM\(0x0b\) id=0x0 fin=1", text)) == 1, (
        text[-3000:])


@needs_server
def test_tquic_client_key_update_during_ngtcp2_download(site: Site) -> None:
    async def main() -> None:
        async with ngtcp2_server(site) as port:
            client = await connect_h3("127.0.0.1", port, client_config(site), timeout=5)
            async with client:
                digest = hashlib.sha256()
                quic = client.protocol.quic
                phase = quic.key_phase
                seen = 0

                def on_data(data: bytes) -> None:
                    nonlocal seen
                    digest.update(data)
                    seen += len(data)
                    if seen >= 1_000_000 and quic.key_phase == phase:
                        client.protocol.request_key_update()

                await client.request("GET", f"https://localhost:{port}/10m.bin",
                                     on_data=on_data)
                assert quic.key_phase != phase
            assert digest.hexdigest() == site.digests["10m.bin"]

    run(main())


# -- gtlsclient <- our server ------------------------------------------------------------------


class Recorder:
    """Wraps the server's connection handler and remembers every connection and its
    first peer address."""

    def __init__(self, inner: Callable[[Any], None]) -> None:
        self.inner = inner
        self.connections: list[tuple[Any, Any]] = []

    def __call__(self, protocol: Any) -> None:
        self.connections.append((protocol, protocol.remote_address))
        self.inner(protocol)


@asynccontextmanager
async def tquic_server(site: Site, retry: bool = False
                       ) -> AsyncIterator[tuple[QuicServer, Recorder]]:
    config = QuicConfiguration(
        is_client=False, alpn_protocols=("h3", "hq-interop"),
        certificate=site.cert.read_bytes(), private_key=site.key.read_bytes(),
        ticket_store=TicketStore(), enable_early_data=True,
        max_data=64 << 20, max_stream_data=32 << 20)
    recorder = Recorder(dispatch_by_alpn(H3FileHandler(site.root)))
    server = await serve("127.0.0.1", 0, config, HqServer(site.root),
                         connection_handler=recorder, retry="always" if retry else "never")
    async with server:
        yield server, recorder


async def gtlsclient(port: int, names: list[str], download: Path, *flags: str,
                     timeout: float = 30.0, log: bool = False) -> str:
    """Run gtlsclient to completion; returns its output (with ``log``: its packet and frame
    log, without payload dumps) for checks and failure messages."""
    assert GTLSCLIENT is not None
    download.mkdir(parents=True, exist_ok=True)
    urls = [f"https://127.0.0.1:{port}/{n}" for n in names]
    verbosity = ("--no-quic-dump", "--no-http-dump") if log else ("-q",)
    proc = await asyncio.create_subprocess_exec(
        GTLSCLIENT, *verbosity, "--exit-on-all-streams-close", f"--download={download}",
        "--timeout=10s", *flags, "127.0.0.1", str(port), *urls,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        await _stop(proc)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, f"gtlsclient exited {proc.returncode}: {text[-2000:]}"
    return text


def check_downloads(site: Site, names: list[str], download: Path) -> None:
    for name in names:
        path = download / name
        assert path.exists(), f"gtlsclient saved no {name}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == site.digests[name], name


@needs_client
@pytest.mark.parametrize("case", list(CASES))
def test_ngtcp2_client_downloads_from_tquic(site: Site, case: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with tquic_server(site) as (server, recorder):
            await gtlsclient(server.local_address[1], CASES[case], tmp_path)
            check_downloads(site, CASES[case], tmp_path)
            [(conn, _)] = recorder.connections
            assert conn.alpn_protocol == "h3"

    run(main())


@needs_client
def test_ngtcp2_client_chacha20_only_with_tquic(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with tquic_server(site) as (server, recorder):
            await gtlsclient(server.local_address[1], ["10m.bin"], tmp_path,
                             f"--ciphers={CHACHA_ONLY}")
            check_downloads(site, ["10m.bin"], tmp_path)
            [(conn, _)] = recorder.connections
            assert conn.quic.cipher_suite == CipherSuite.CHACHA20_POLY1305_SHA256

    run(main())


@needs_client
def test_ngtcp2_client_resumes_and_sends_0rtt_to_tquic(site: Site, tmp_path: Path) -> None:
    session, params = tmp_path / "session.pem", tmp_path / "tp.pem"
    state = (f"--session-file={session}", f"--tp-file={params}")

    async def main() -> None:
        async with tquic_server(site) as (server, recorder):
            port = server.local_address[1]
            await gtlsclient(port, ["1k.bin"], tmp_path / "first", *state)
            assert session.exists(), "tquic sent no NewSessionTicket gtlsclient could store"
            log = await gtlsclient(port, CONCURRENT[:3], tmp_path / "second", *state,
                                   log=True)
            check_downloads(site, CONCURRENT[:3], tmp_path / "second")
            (first, _), (second, _) = recorder.connections
            assert not first.session_resumed
            assert second.session_resumed and second.early_data_accepted
            # ngtcp2's own log: the first request (stream 0, with FIN) left in a 0-RTT
            # packet and the server did not reject early data.
            assert re.search(r"0RTT STREAM\(0x0b\) id=0x0 fin=1", log), log[-2000:]
            assert "reject" not in log.lower()

    run(main())


@needs_client
def test_ngtcp2_client_key_update_with_tquic(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with tquic_server(site) as (server, recorder):
            await gtlsclient(server.local_address[1], ["10m.bin"], tmp_path,
                             "--key-update=50ms")
            check_downloads(site, ["10m.bin"], tmp_path)
            [(conn, _)] = recorder.connections
            assert conn.quic.key_phase == 1  # we followed ngtcp2's update

    run(main())


@needs_client
def test_ngtcp2_client_migrates_during_download_from_tquic(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with tquic_server(site) as (server, recorder):
            await gtlsclient(server.local_address[1], ["10m.bin"], tmp_path,
                             "--change-local-addr=100ms")
            check_downloads(site, ["10m.bin"], tmp_path)
            [(conn, first_address)] = recorder.connections
            assert conn.remote_address != first_address  # the server follows the new path

    run(main())


@needs_client
def test_ngtcp2_client_follows_tquic_retry(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with tquic_server(site, retry=True) as (server, recorder):
            log = await gtlsclient(server.local_address[1], ["1k.bin"], tmp_path, log=True)
            check_downloads(site, ["1k.bin"], tmp_path)
            assert "type=Retry" in log, log[-2000:]
            assert [conn.alpn_protocol for conn, _ in recorder.connections] == ["h3"]

    run(main())


# -- the tquic command itself -----------------------------------------------------------------


@needs_client
def test_ngtcp2_client_downloads_from_the_tquic_server_command(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tquic", "server", "--listen", "127.0.0.1:0", "--cert",
            str(site.cert), "--key", str(site.key), "--root", str(site.root),
            stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stderr is not None
            line = (await asyncio.wait_for(proc.stderr.readline(), 15)).decode()
            match = re.search(r"\]:(\d+) \(ALPN h3,hq-interop\)", line)
            assert match, line
            names = ["1k.bin", *CONCURRENT[:5]]
            await gtlsclient(int(match.group(1)), names, tmp_path)
            check_downloads(site, names, tmp_path)
        finally:
            await _stop(proc)

    run(main())


@needs_server
def test_tquic_client_command_downloads_from_ngtcp2(site: Site, tmp_path: Path) -> None:
    async def main() -> None:
        async with ngtcp2_server(site) as port:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tquic", "client", "-v", "--ca", str(site.cert), "-o",
                str(tmp_path), f"https://localhost:{port}/10m.bin",
                f"https://localhost:{port}/1k.bin",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 30)
            finally:
                await _stop(proc)
            assert proc.returncode == 0, err.decode()
            for name in ("10m.bin", "1k.bin"):
                assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == (
                    site.digests[name])
            # -v: status line and ngtcp2's header fields.
            assert "HTTP/3 200" in err.decode() and "server: nghttp3/ngtcp2" in err.decode()
            assert "10000000" in out.decode()

    run(main())

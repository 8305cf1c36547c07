"""``tquic client`` on the unhappy paths (issue #20): a failed fetch leaves no file and
never replaces a good one, an interrupted download leaves only NAME.part, ``-C -``
resumes it to a file byte-identical to a whole download, ``-O``/``--output-dir``,
``--keep-error-body``, and the exit codes that tell the failures apart."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_run import tquic
from site_client import Site, running_site

from tquic.cli.fetch import Fetch, connect_failed
from tquic.cli.hq import generated_body
from tquic.io.protocol import ConnectionClosedError

ALPNS = ["h3", "hq-interop"]
SIZE = 8_000_000  # /8000000: long enough on loopback to interrupt midway


@pytest.fixture(scope="module")
def site(cert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    top = tmp_path_factory.mktemp("site")
    (top / "passwd").write_bytes(b"CANARY\n")
    root = top / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"0123456789abcdefghij")
    (root / "big.bin").write_bytes(os.urandom(1_500_000))
    with running_site(cert_dir, root, top / "access.log", "--quiet") as running:
        yield running


def client(site: Site, *args: str, cwd: Path | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tquic", "client", "--insecure", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


def url(site: Site, path: str) -> str:
    return f"https://127.0.0.1:{site.port}{path}"


@pytest.mark.parametrize("alpn", ALPNS)
def test_failed_fetch_leaves_no_file_and_an_existing_one_untouched(site: Site, tmp_path: Path,
                                                                   alpn: str) -> None:
    (tmp_path / "missing.txt").write_bytes(b"a good file from yesterday\n")
    result = client(site, "--alpn", alpn, "--output-dir", str(tmp_path),
                    url(site, "/%2e%2e/%2e%2e/etc/passwd"), url(site, "/missing.txt"))
    assert result.returncode == 22, result.stderr
    assert "Traceback" not in result.stderr
    # No passwd (the 404's body), no .part, and yesterday's file as it was.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["missing.txt"]
    assert (tmp_path / "missing.txt").read_bytes() == b"a good file from yesterday\n"


def test_keep_error_body_keeps_it_without_replacing_a_file(site: Site, tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_bytes(b"mine\n")
    result = client(site, "--keep-error-body", "-o", str(tmp_path), url(site, "/gone.txt"),
                    url(site, "/mine.txt"))
    assert result.returncode == 22 and "mine.txt.error" in result.stderr
    assert (tmp_path / "gone.txt").read_bytes().startswith(b"no such file")
    assert (tmp_path / "mine.txt").read_bytes() == b"mine\n"
    assert (tmp_path / "mine.txt.error").read_bytes().startswith(b"no such file")


def test_remote_name_in_cwd(site: Site, tmp_path: Path) -> None:
    result = client(site, "-O", url(site, "/a.txt?x=1"), url(site, "/"), cwd=tmp_path)
    assert result.returncode == 22  # "/" has no index.html here: 404, saved as nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == b"0123456789abcdefghij"
    clash = client(site, "-O", url(site, "/a.txt"), url(site, "/x/a.txt"), cwd=tmp_path)
    assert clash.returncode == 1 and "would both be saved as a.txt" in clash.stderr


@pytest.mark.parametrize("partial_name", ["big.bin.part", "big.bin"])
def test_resume_gives_a_file_identical_to_a_whole_download(site: Site, tmp_path: Path,
                                                           partial_name: str) -> None:
    whole = (site.root / "big.bin").read_bytes()
    (tmp_path / partial_name).write_bytes(whole[:777_777])  # ours (.part) or another tool's
    result = client(site, "-C", "-", "-o", str(tmp_path), "--json", url(site, "/big.bin"))
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["results"]
    assert entry["status"] == 206 and entry["bytes"] == len(whole) - 777_777
    assert (tmp_path / "big.bin").read_bytes() == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]
    if partial_name == "big.bin":
        # Complete already: the server answers 416 */SIZE, the file stays as it is.
        again = client(site, "--continue", "-o", str(tmp_path), url(site, "/big.bin"))
        assert again.returncode == 0, again.stderr
        assert (tmp_path / "big.bin").read_bytes() == whole


def _wait_for_size(path: Path, size: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= size:
            return
        time.sleep(0.005)
    pytest.fail(f"{path} never reached {size} bytes")


def _start_download(port: int, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tquic", "client", "--insecure", "--timeout", "1", "-o",
         str(out), *extra, f"https://127.0.0.1:{port}/{SIZE}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def rate_limited_relay(target: int) -> Iterator[tuple[int, int]]:
    """``tquic netem`` in front of ``target`` at 40 Mbit/s with a 64 kB queue: what
    reaches the client is bounded, so freezing the relay really stops the data (a
    loopback server could otherwise have the whole file in the client's socket
    buffer).  Yields (port, pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tquic", "netem", "--listen", "127.0.0.1:0", "--target",
         f"127.0.0.1:{target}", "--link", "default=rate=40mbit,queue=64kB",
         "--stats-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("netem: listening on 127.0.0.1:"), first
        yield int(first.split()[3].rstrip(",").rsplit(":", 1)[1]), proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.communicate(timeout=10)


def test_interrupted_downloads_leave_only_part_and_resume_byte_identical(
        cert_dir: Path, site: Site, tmp_path: Path) -> None:
    out, root = tmp_path / "out", tmp_path / "root"
    root.mkdir()
    part, final = out / f"{SIZE}.part", out / str(SIZE)
    with running_site(cert_dir, root, tmp_path / "log1", "--quiet") as first, \
            rate_limited_relay(first.port) as (relay, relay_pid):
        # 1. The network goes silent midway: no data for --timeout (1 s) -> exit 28.
        download = _start_download(relay, out)
        _wait_for_size(part, 500_000)
        os.kill(relay_pid, signal.SIGSTOP)
        try:
            _, err = download.communicate(timeout=30)
        finally:
            os.kill(relay_pid, signal.SIGCONT)
        assert download.returncode == 28, err
        assert not final.exists() and part.stat().st_size >= 500_000
        assert f"kept in {part}" in err and "-C -" in err
        # 2. Resumed, then the server goes away: CONNECTION_CLOSE midway -> exit 18.
        frozen_at = part.stat().st_size
        download = _start_download(relay, out, "-C", "-")
        _wait_for_size(part, frozen_at + 500_000)
        os.kill(first.pid, signal.SIGTERM)
        _, err = download.communicate(timeout=30)
    # 18 when the close arrives; 28 if the relay's full queue dropped it.
    assert download.returncode in (18, 28), err
    assert not final.exists() and part.stat().st_size > frozen_at
    # 3. Resumed to the end from another server: the same bytes as one whole download.
    result = client(site, "-C", "-", "-o", str(out), url(site, f"/{SIZE}"))
    assert result.returncode == 0, result.stderr
    assert not part.exists()
    digest = hashlib.sha256()
    with open(final, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    expected = hashlib.sha256()
    for offset in range(0, SIZE, 1 << 20):
        expected.update(generated_body(min(1 << 20, SIZE - offset), offset))
    assert final.stat().st_size == SIZE and digest.hexdigest() == expected.hexdigest()


def test_exit_codes_tell_the_failures_apart(site: Site, tmp_path: Path) -> None:
    # 7 (nobody answers), 60 (untrusted certificate): test_cli_hq; 35 (no common ALPN):
    # test_cli_h3; 22: above; 18 and 28: the interrupted downloads.
    (tmp_path / "a.txt.part").mkdir()  # cannot be opened for writing
    unwritable = client(site, "-o", str(tmp_path), url(site, "/a.txt"))
    assert unwritable.returncode == 23 and "cannot write output" in unwritable.stderr
    assert client(site, "-C", "-", url(site, "/a.txt")).returncode == 1  # needs -O / -o
    assert client(site, "-C", "5", "-O", url(site, "/a.txt")).returncode == 2
    usage = tquic("client", "--help")
    assert all(f" {code}  " in usage.stdout for code in (6, 7, 18, 22, 23, 28, 35, 60))


def test_connect_failures_map_to_their_exit_codes() -> None:
    # 6 would need a DNS query (tests only talk to loopback): the mapping itself.
    cases = [(socket.gaierror(-2, "Name or service not known"), 6), (TimeoutError(), 7),
             (ConnectionRefusedError(111, "Connection refused"), 7),
             (ConnectionClosedError(0x100 + 48, "unknown_ca", False), 60),
             (ConnectionClosedError(0x100 + 120, "no_application_protocol", True), 35),
             (ConnectionClosedError(0x2, "internal", True), 7)]
    for exc, code in cases:
        [fetch] = fetches = [Fetch(url="https://h:1/x", host="h", port=1, path="/x")]
        connect_failed(fetches, "h", 1, exc, timeout=1)
        assert fetch.exit_code == code and fetch.error, (exc, fetch)


def test_a_fifo_as_the_output_gets_the_body_streamed_into_it(site: Site, tmp_path: Path) -> None:
    # A reader on a pipe (as benchmarks/realtime.py times downloads): no NAME.part to rename.
    fifo = tmp_path / "big.bin"
    os.mkfifo(fifo)
    received = bytearray()

    def drain() -> None:
        with open(fifo, "rb") as pipe:
            while chunk := pipe.read(1 << 16):
                received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    result = client(site, "-o", str(tmp_path), url(site, "/big.bin"))
    reader.join(10)
    assert result.returncode == 0, result.stderr
    assert bytes(received) == (site.root / "big.bin").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]

"""``tquic server`` serving HTTP/3 and hq-interop on one port (ALPN per connection), and
``tquic client`` speaking HTTP/3 by default."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import tquic

from tquic.cli.hq import generated_body
from tquic.core.config import QuicConfiguration
from tquic.h3.aio import connect_h3
from tquic.h3.messages import Response


def start_server(cert_dir: Path, root: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tquic", "server", "--listen", "127.0.0.1:0",
         "--cert", str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"),
         "--root", str(root), *extra],
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"\]:(\d+)", line)
    if match is None:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"server did not start: {line}")
    return proc, int(match.group(1))


@pytest.fixture(scope="module")
def served(cert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("root")
    (root / "big.bin").write_bytes(os.urandom(2_000_000))
    (root / "small.txt").write_bytes(b"hello over h3\n")
    proc, port = start_server(cert_dir, root)
    try:
        yield port, root
    finally:
        proc.terminate()
        proc.wait(10)


def test_h3_is_the_default_and_files_match_by_sha256(served: tuple[int, Path], cert_dir: Path,
                                                     tmp_path: Path) -> None:
    port, root = served
    base = f"https://localhost:{port}"
    result = tquic("client", f"{base}/big.bin", f"{base}/small.txt", f"{base}/700000",
                   "--ca", str(cert_dir / "cert.pem"), "-o", str(tmp_path), "--json", "-v")
    assert result.returncode == 0, result.stderr
    by_url = {r["url"]: r for r in json.loads(result.stdout)["results"]}
    assert by_url[f"{base}/big.bin"]["sha256"] == hashlib.sha256(
        (root / "big.bin").read_bytes()).hexdigest()
    assert by_url[f"{base}/700000"]["sha256"] == hashlib.sha256(
        generated_body(700000)).hexdigest()
    assert (tmp_path / "small.txt").read_bytes() == b"hello over h3\n"
    # -v: the status line and the header fields of every response, on stderr.
    assert f"{base}/big.bin: HTTP/3 200" in result.stderr
    assert "content-length: 2000000" in result.stderr
    assert "content-length: 700000" in result.stderr


def test_same_server_answers_hq_interop_clients(served: tuple[int, Path]) -> None:
    port, root = served
    result = tquic("client", "--alpn", "hq-interop", "--insecure", "--json",
                   f"https://127.0.0.1:{port}/big.bin")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)["results"]
    assert entry["sha256"] == hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()


def test_missing_file_is_404_with_its_own_content_length(served: tuple[int, Path]) -> None:
    port, _ = served
    result = tquic("client", "--insecure", "-v", f"https://127.0.0.1:{port}/missing.bin")
    assert result.returncode == 22  # an HTTP error status
    assert "HTTP/3 404" in result.stderr
    assert "tquic client: error:" in result.stderr and "not found" in result.stderr


def test_head_gives_length_without_body_and_get_streams_large_bodies(
        served: tuple[int, Path]) -> None:
    port, root = served

    async def main() -> tuple[Response, Response, Response, bytes]:
        client = await connect_h3("127.0.0.1", port, QuicConfiguration(verify_peer=False),
                                  timeout=5)
        async with client:
            url = f"https://127.0.0.1:{port}"
            head = await client.request("HEAD", f"{url}/big.bin")
            post = await client.request("POST", f"{url}/big.bin", body=b"x")
            pieces: list[bytes] = []
            get = await client.request("GET", f"{url}/big.bin", on_data=pieces.append)
            return head, post, get, b"".join(pieces)

    head, post, get, body = asyncio.run(asyncio.wait_for(main(), 30))
    assert head.status == 200 and head.body == b""
    assert head.header("content-length") == b"2000000"
    assert post.status == 405 and post.header("allow") == b"GET, HEAD"
    assert get.status == 200 and get.body == b""  # streamed to on_data instead
    assert body == (root / "big.bin").read_bytes()


def test_alpn_option_restricts_the_server_to_hq(cert_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 100)
    proc, port = start_server(cert_dir, tmp_path, "--alpn", "hq-interop")
    try:
        refused = tquic("client", "--insecure", f"https://127.0.0.1:{port}/f", timeout=30)
        served = tquic("client", "--alpn", "hq-interop", "--insecure",
                       f"https://127.0.0.1:{port}/f", timeout=30)
    finally:
        proc.terminate()
        proc.wait(10)
    assert refused.returncode == 35 and "no_application_protocol" in refused.stderr
    assert served.returncode == 0, served.stderr


def test_bad_alpn_option_is_a_usage_error() -> None:
    result = tquic("server", "--cert", "c", "--key", "k", "--alpn", "spdy")
    assert result.returncode == 2 and "choose from h3, hq-interop" in result.stderr

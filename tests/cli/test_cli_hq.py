"""The ``tquic certs/server/client`` commands end to end, and their one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import running_server, server_argv, tquic

from tquic.cli.common import parse_listen
from tquic.cli.hq import HqRequestError, generated_body, generated_size, parse_request, resolve_path


@pytest.fixture(scope="module")
def served(cert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    root = tmp_path_factory.mktemp("root")
    (root / "file.bin").write_bytes(os.urandom(300_000))
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_bytes(b"nested\n")
    with running_server(server_argv(cert_dir, "--root", str(root))) as port:
        yield port, root


def test_certs_writes_a_cert_and_a_private_key(cert_dir: Path) -> None:
    assert b"BEGIN CERTIFICATE" in (cert_dir / "cert.pem").read_bytes()
    assert b"PRIVATE KEY" in (cert_dir / "key.pem").read_bytes()
    assert (cert_dir / "key.pem").stat().st_mode & 0o077 == 0


def test_client_fetches_concurrently_with_json_summary(served: tuple[int, Path],
                                                       cert_dir: Path, tmp_path: Path) -> None:
    port, root = served
    base = f"https://localhost:{port}"
    result = tquic("client", f"{base}/file.bin", f"{base}/sub/a.txt", f"{base}/123456",
                   "--ca", str(cert_dir / "cert.pem"), "-o", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by_url = {r["url"]: r for r in report["results"]}
    expected = hashlib.sha256((root / "file.bin").read_bytes()).hexdigest()
    assert by_url[f"{base}/file.bin"]["sha256"] == expected
    assert by_url[f"{base}/123456"]["bytes"] == 123456
    assert (tmp_path / "file.bin").read_bytes() == (root / "file.bin").read_bytes()
    assert (tmp_path / "a.txt").read_bytes() == b"nested\n"
    assert (tmp_path / "123456").read_bytes() == generated_body(123456)
    assert report["total_bytes"] == 300_000 + 7 + 123456


def test_client_prints_a_table_without_json(served: tuple[int, Path], cert_dir: Path) -> None:
    port, _ = served
    result = tquic("client", f"https://127.0.0.1:{port}/1000", "--insecure")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert header.split() == ["URL", "bytes", "seconds", "Mbit/s"]
    assert row.split()[1] == "1000"
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_missing_file_and_traversal_are_one_line_errors(served: tuple[int, Path]) -> None:
    port, _ = served
    result = tquic("client", f"https://127.0.0.1:{port}/nope.txt",
                   f"https://127.0.0.1:{port}/../etc/passwd", "--insecure")
    assert result.returncode == 22
    errors = [line for line in result.stderr.splitlines() if line]
    assert len(errors) == 2
    assert all(line.startswith("tquic client: error:") and "not found" in line
               for line in errors)
    assert "Traceback" not in result.stderr


def test_untrusted_certificate_is_a_one_line_error(served: tuple[int, Path]) -> None:
    port, _ = served
    result = tquic("client", f"https://localhost:{port}/10")
    assert result.returncode == 60
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("tquic client: error:") and "TLS" in line and "--ca" in line


def test_nobody_listening_is_a_one_line_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = tquic("client", f"https://127.0.0.1:{port}/1", "--insecure", "--timeout", "1")
    assert time.monotonic() - started < 30
    assert result.returncode == 7
    [line] = result.stderr.strip().splitlines()
    assert "cannot connect" in line and "Traceback" not in result.stderr


def test_bad_flags_and_bad_values(cert_dir: Path) -> None:
    result = tquic("client", "https://127.0.0.1:1/x", "--bogus")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    result = tquic("client", "not a url")
    assert result.returncode == 1 and "bad URL" in result.stderr
    result = tquic("client", "https://127.0.0.1:1/x", "--cc", "nosuchcc", "--insecure")
    assert result.returncode == 1 and "congestion_control" in result.stderr
    result = tquic("server", "--cert", "/no/such.pem", "--key", "/no/such.pem")
    assert result.returncode == 1 and "certificate file not found" in result.stderr
    result = tquic("server", "--listen", "127.0.0.1:99999", "--cert",
                   str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"))
    assert result.returncode == 2 and "bad port" in result.stderr
    for run in (result,):
        assert "Traceback" not in run.stderr


def test_hq_request_parsing_and_path_resolution(tmp_path: Path) -> None:
    assert parse_request(b"GET /a/b.txt\r\n") == "/a/b.txt"
    assert parse_request(b"GET /x") == "/x"
    for bad in (b"POST /x\r\n", b"GET x\r\n", b"GET /a b\r\n", b"\xff\xfe"):
        with pytest.raises(HqRequestError):
            parse_request(bad)
    assert generated_size("/42") == 42 and generated_size("/4x2") is None
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "ok").write_bytes(b"1")
    (tmp_path / "outside").write_bytes(b"2")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside")
    root = tmp_path / "root"
    assert resolve_path(root, "/ok") == (root / "ok").resolve()
    assert resolve_path(root, "/../outside") is None
    assert resolve_path(root, "/link") is None  # a symlink out of the root
    assert resolve_path(root, "/") is None  # a directory is not a file
    assert resolve_path(root, "/ok\x00") is None
    assert generated_body(5, 254) == bytes([254, 255, 0, 1, 2])


def test_listen_address_forms() -> None:
    assert parse_listen("127.0.0.1:4433") == ("127.0.0.1", 4433)
    assert parse_listen("[::1]:443") == ("::1", 443)
    assert parse_listen(":4433") == ("::", 4433)
    assert parse_listen("4433") == ("::", 4433)

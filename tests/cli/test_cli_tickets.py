"""``tquic server`` issues session tickets and ``tquic client --session-ticket FILE``
resumes with them (RFC 9846 §4.6.1) and sends its requests in 0-RTT (RFC 9001 §4.6):
two client runs against one server, the second resumed."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import tquic

from tquic.cli.hq import generated_body


def start_server(cert_dir: Path, *flags: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tquic", "server", "--listen", "127.0.0.1:0",
         "--cert", str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"), *flags],
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"\]:(\d+)", line)
    if match is None:
        proc.terminate()
        proc.wait(10)
        raise AssertionError(line)
    return proc, int(match.group(1))


@pytest.fixture
def server(cert_dir: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    flags: tuple[str, ...] = getattr(request, "param", ())
    proc, port = start_server(cert_dir, *flags)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def fetch(port: int, cert_dir: Path, ticket: Path, *flags: str,
          alpn: str = "hq-interop") -> dict[str, object]:
    result = tquic("client", f"https://127.0.0.1:{port}/5000", "--alpn", alpn,
                   "--ca", str(cert_dir / "cert.pem"), "--json",
                   "--session-ticket", str(ticket), *flags)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    [entry] = report["results"]  # type: ignore[misc]
    assert entry["sha256"] == hashlib.sha256(generated_body(5000)).hexdigest()
    return report


@pytest.mark.parametrize("alpn", ["hq-interop", "h3"])
def test_second_client_run_resumes_with_0rtt(server: int, cert_dir: Path, tmp_path: Path,
                                              alpn: str) -> None:
    ticket = tmp_path / "ticket.bin"
    first = fetch(server, cert_dir, ticket, alpn=alpn)
    [conn] = first["connections"]  # type: ignore[misc]
    assert {k: conn[k] for k in ("server", "session_resumed", "early_data_accepted")} == {
        "server": f"127.0.0.1:{server}", "session_resumed": False,
        "early_data_accepted": False}
    assert ticket.exists() and ticket.stat().st_mode & 0o077 == 0  # it holds a PSK
    second = fetch(server, cert_dir, ticket, alpn=alpn)
    [conn] = second["connections"]  # type: ignore[misc]
    assert {k: conn[k] for k in ("server", "session_resumed", "early_data_accepted")} == {
        "server": f"127.0.0.1:{server}", "session_resumed": True, "early_data_accepted": True}


def test_resumption_without_early_data(server: int, cert_dir: Path, tmp_path: Path) -> None:
    ticket = tmp_path / "ticket.bin"
    fetch(server, cert_dir, ticket)
    second = fetch(server, cert_dir, ticket, "--no-early-data")
    [conn] = second["connections"]  # type: ignore[misc]
    assert conn["session_resumed"] is True and conn["early_data_accepted"] is False


@pytest.mark.parametrize("server", [("--no-tickets",)], indirect=True)
def test_server_without_tickets_leaves_nothing_to_resume(server: int, cert_dir: Path,
                                                         tmp_path: Path) -> None:
    ticket = tmp_path / "ticket.bin"
    fetch(server, cert_dir, ticket)
    assert not ticket.exists()


def test_shared_ticket_key_resumes_across_server_restarts(cert_dir: Path,
                                                         tmp_path: Path) -> None:
    key = tmp_path / "ticket.key"
    key.write_text("ab" * 32 + "\n")
    ticket = tmp_path / "ticket.bin"
    for run in range(2):
        proc, port = start_server(cert_dir, "--ticket-key", str(key))
        try:
            report = fetch(port, cert_dir, ticket)
        finally:
            proc.terminate()
            proc.wait(10)
        [conn] = report["connections"]  # type: ignore[misc]
        assert conn["session_resumed"] is (run == 1)


def test_text_output_says_the_session_was_resumed(server: int, cert_dir: Path,
                                                  tmp_path: Path) -> None:
    ticket = tmp_path / "ticket.bin"
    fetch(server, cert_dir, ticket)
    result = tquic("client", f"https://127.0.0.1:{server}/10", "--alpn", "hq-interop",
                   "--ca", str(cert_dir / "cert.pem"), "--session-ticket", str(ticket))
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{server}: session resumed (0-RTT accepted)" in result.stdout


def test_bad_ticket_file_and_bad_ticket_key_are_one_line_errors(cert_dir: Path,
                                                                tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a ticket")
    result = tquic("client", "https://127.0.0.1:9/x", "--session-ticket", str(junk))
    assert result.returncode != 0
    assert "is not a session ticket file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = tquic("server", "--listen", "127.0.0.1:0", "--cert", str(cert_dir / "cert.pem"),
                   "--key", str(cert_dir / "key.pem"), "--ticket-key", str(junk))
    assert result.returncode != 0 and "ticket key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

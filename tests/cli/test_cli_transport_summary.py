"""``tquic client`` says what the transport did: per connection the negotiated ALPN,
QUIC version, cipher suite and multipath, per path the addresses, RTT, window,
packet and byte counters and ECN state (``--json``), a short RTT/loss line in the
human summary, and ``-v`` turns on the ``tquic`` loggers on stderr.  Each test runs
the real client against a real ``tquic server`` on loopback."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_run import running_server, server_argv, tquic

from tquic.cli.transport import setup_logging
from tquic.crypto.keys import CipherSuite

SIZE = 300_000
# The client sends its request at once and opens extra paths alongside: a download
# that should show a second path must outlast that path's validation, which a
# 300 KB one on loopback does not always do.
MULTIPATH_SIZE = 5_000_000
ECN_STATES = {"testing", "unknown", "capable", "failed", "disabled"}


@pytest.fixture(scope="module")
def server(cert_dir: Path) -> Iterator[int]:
    with running_server(server_argv(cert_dir)) as port:
        yield port


def client(port: int, cert_dir: Path, *flags: str,
           size: int = SIZE) -> subprocess.CompletedProcess[str]:
    result = tquic("client", f"https://127.0.0.1:{port}/{size}", "--ca",
                   str(cert_dir / "cert.pem"), *flags)
    assert result.returncode == 0, result.stderr
    return result


def connection(port: int, cert_dir: Path, *flags: str, size: int = SIZE) -> dict[str, Any]:
    report = json.loads(client(port, cert_dir, "--json", *flags, size=size).stdout)
    assert report["results"][0]["bytes"] == size
    [conn] = report["connections"]
    assert isinstance(conn, dict)
    return conn


@pytest.mark.parametrize("alpn", ["h3", "hq-interop"])
def test_json_connection_entry_has_the_negotiation_and_plausible_per_path_figures(
        server: int, cert_dir: Path, alpn: str) -> None:
    conn = connection(server, cert_dir, "--alpn", alpn)
    # The fields scripts already read are still there, unchanged.
    assert conn["server"] == f"127.0.0.1:{server}"
    assert conn["session_resumed"] is False and conn["early_data_accepted"] is False
    assert conn["alpn"] == alpn and conn["quic_version"] == "v1"
    assert conn["cipher_suite"] in CipherSuite.__members__
    assert conn["multipath"] is False
    [path] = conn["paths"]
    assert path["path_id"] == 0 and path["state"] == "validated"
    assert path["remote"] == f"127.0.0.1:{server}"
    assert 0 < path["min_rtt_ms"] <= path["srtt_ms"] < 5000
    assert path["cwnd"] > 0
    assert path["bytes_received"] >= SIZE  # the body plus framing and handshake
    assert 0 < path["bytes_sent"] < SIZE  # requests and ACKs only
    assert path["packets_sent"] > 0
    assert 0 <= path["packets_lost"] <= path["packets_sent"]
    assert path["packets_retransmitted"] >= 0
    assert path["ecn"] in ECN_STATES


def test_json_reports_ecn_disabled_with_no_ecn(server: int, cert_dir: Path) -> None:
    conn = connection(server, cert_dir, "--no-ecn")
    assert [p["ecn"] for p in conn["paths"]] == ["disabled"]


def test_json_multipath_connection_lists_every_path(server: int, cert_dir: Path) -> None:
    conn = connection(server, cert_dir, "--path", "127.0.0.1", "--path", "127.0.0.2",
                      size=MULTIPATH_SIZE)
    assert conn["multipath"] is True
    paths = conn["paths"]
    assert [p["path_id"] for p in paths] == [0, 1]
    assert paths[0]["local"].startswith("127.0.0.1:")
    assert paths[1]["local"].startswith("127.0.0.2:")
    assert sum(p["bytes_received"] for p in paths) >= MULTIPATH_SIZE
    assert all(p["srtt_ms"] > 0 for p in paths)


def test_human_summary_has_one_rtt_and_loss_line_per_connection(server: int,
                                                                 cert_dir: Path) -> None:
    out = client(server, cert_dir).stdout
    lines = [line for line in out.splitlines() if line.startswith(f"127.0.0.1:{server}: ")]
    assert len(lines) == 1, out
    match = re.search(r"h3 over QUIC v1, rtt ([\d.]+)/([\d.]+) ms \(min/smoothed\), "
                      r"(\d+) of (\d+) packets sent lost", lines[0])
    assert match is not None, lines[0]
    assert int(match.group(4)) > 0
    assert "  path 0 " not in out  # the per-path detail is for -v only


def test_verbose_prints_path_detail_and_info_logs_on_stderr(server: int,
                                                            cert_dir: Path) -> None:
    quiet = client(server, cert_dir)
    assert " INFO " not in quiet.stderr
    result = client(server, cert_dir, "-v")
    assert re.search(r"^  path 0 \S+ -> 127\.0\.0\.1:\d+ validated: rtt .* ECN \w+$",
                     result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^\S+ INFO tquic\.cli\.client: 127\.0\.0\.1:\d+: transfers done; "
                     r"h3 over QUIC v1", result.stderr, re.MULTILINE), result.stderr
    assert "HTTP/3 200" in result.stderr  # -v keeps printing the response headers


def test_setup_logging_levels_follow_the_v_count() -> None:
    logger = logging.getLogger("tquic")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    try:
        setup_logging(0)
        assert logger.handlers == saved[1]  # nothing configured without -v
        setup_logging(1)
        assert logger.level == logging.INFO
        setup_logging(2)
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]

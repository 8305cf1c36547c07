"""``tquic client --path`` against a real ``tquic server`` process, on loopback only.

127.0.0.0/8 is all loopback on Linux, so 127.0.0.1 and 127.0.0.2 are two local
addresses bindable without root: two paths of one connection.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import running_server, server_argv, tquic

from tquic.io.multipath_client import LocalPath, parse_local_path
from tquic.qlog import read_seq

SIZE = 5_000_000


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("root")
    (directory / "big.bin").write_bytes(os.urandom(SIZE))
    return directory


def _server(cert_dir: Path, root: Path, *extra: str) -> Iterator[int]:
    with running_server(server_argv(cert_dir, "--root", str(root), *extra)) as port:
        yield port


@pytest.fixture(scope="module")
def served(cert_dir: Path, root: Path) -> Iterator[int]:
    yield from _server(cert_dir, root)


def _fetch(port: int, cert_dir: Path, *extra: str) -> dict[str, object]:
    result = tquic("client", f"https://localhost:{port}/big.bin",
                   "--ca", str(cert_dir / "cert.pem"), "--json", "--timeout", "10", *extra)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("alpn", ["h3", "hq-interop"])
def test_two_paths_carry_one_download_intact(served: int, cert_dir: Path, root: Path,
                                             alpn: str) -> None:
    report = _fetch(served, cert_dir, "--path", "127.0.0.1", "--path", "127.0.0.2",
                    "--alpn", alpn)
    (result,) = report["results"]  # type: ignore[misc]
    assert result["error"] is None
    assert result["bytes"] == SIZE
    assert result["sha256"] == hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    paths = {p["path_id"]: p for p in report["paths"]}  # type: ignore[attr-defined]
    assert set(paths) == {0, 1}
    assert paths[0]["local"].startswith("127.0.0.1:")
    assert paths[1]["local"].startswith("127.0.0.2:")
    assert all(p["state"] == "validated" for p in paths.values())
    # Both paths carried part of the body (the split on loopback depends on the CPU,
    # so only "more than 1 %" is asserted), and the client sent on both.
    assert all(p["bytes_received"] > SIZE // 100 for p in paths.values()), paths
    assert sum(p["bytes_received"] for p in paths.values()) >= SIZE
    assert all(p["bytes_sent"] > 0 and p["srtt_ms"] > 0 for p in paths.values())
    assert report["path_notes"] == {}


def test_path_table_in_the_human_summary_and_a_qlog(served: int, cert_dir: Path,
                                                    tmp_path: Path) -> None:
    # The 5 MB file: a short download could end before path 1 opens (the qlog ends
    # at the close).
    result = tquic("client", f"https://localhost:{served}/big.bin", "--ca",
                   str(cert_dir / "cert.pem"), "--path", "127.0.0.1", "--path", "127.0.0.2",
                   "--scheduler", "roundrobin", "--qlog-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (qlog,) = tmp_path.iterdir()
    assert '"path_id":1' in qlog.read_text().replace(" ", "")
    # The file is complete although the process exits right after its last byte (the
    # CLI never waits for the closing period): it ends with the CONNECTION_CLOSE sent.
    records = read_seq(qlog.read_text())[1:]
    assert _ends_with_our_close([(r["name"], r["data"]) for r in records])
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["path", "local"])
    rows = [line.split() for line in lines[header + 1:header + 3]]
    assert [r[0] for r in rows] == ["0", "1"]
    assert rows[0][1].startswith("127.0.0.1:") and rows[1][1].startswith("127.0.0.2:")


def test_a_qlog_0_3_document_is_whole_when_the_client_exits(served: int, cert_dir: Path,
                                                            tmp_path: Path) -> None:
    result = tquic("client", f"https://localhost:{served}/100000", "--ca",
                   str(cert_dir / "cert.pem"), "--qlog-dir", str(tmp_path),
                   "--qlog-format", "0.3")
    assert result.returncode == 0, result.stderr
    (qlog,) = tmp_path.iterdir()
    document = json.loads(qlog.read_text())
    (trace,) = document["traces"]
    events = [(event["name"], event["data"]) for event in trace["events"]]
    assert any(name == "transport:packet_received" for name, _ in events)
    assert _ends_with_our_close(events), events[-5:]


def _ends_with_our_close(events: list[tuple[str, dict[str, object]]]) -> bool:
    """The trace says we closed the connection, and the packet that carried the close
    (the last one sent, after that record) is in it too."""
    names = [name for name, _ in events]
    closed = [i for i, name in enumerate(names) if name.endswith("connection_closed")]
    return bool(closed) and names[-1].endswith("datagrams_sent") and any(
        name.endswith("packet_sent") for name in names[closed[0] + 1:])


def test_server_without_multipath_leaves_the_client_on_one_path(cert_dir: Path,
                                                                root: Path) -> None:
    for port in _server(cert_dir, root, "--no-multipath"):
        report = _fetch(port, cert_dir, "--path", "127.0.0.1", "--path", "127.0.0.2")
        assert report["results"][0]["bytes"] == SIZE  # type: ignore[index]
        assert [p["path_id"] for p in report["paths"]] == [0]  # type: ignore[attr-defined]
        (note,) = report["path_notes"].values()  # type: ignore[attr-defined]
        assert "did not negotiate multipath" in note


def test_unknown_scheduler_is_a_one_line_error_with_the_choices() -> None:
    result = tquic("client", "https://localhost:1/x", "--scheduler", "nosuch")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "unknown scheduler 'nosuch'" in line
    assert "minrtt" in line and "roundrobin" in line


def test_non_local_path_address_is_a_clear_error() -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never configured on a test host.
    result = tquic("client", "https://localhost:1/x", "--insecure", "--path", "127.0.0.1",
                   "--path", "192.0.2.10")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "cannot bind path 192.0.2.10" in line and "not configured on this host" in line


def test_unknown_interface_is_a_clear_error() -> None:
    result = tquic("client", "https://localhost:1/x", "--insecure",
                   "--path", "127.0.0.1%nosuchif0")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "cannot bind path 127.0.0.1%nosuchif0" in line


def test_parse_local_path() -> None:
    assert parse_local_path("10.0.0.2") == LocalPath("10.0.0.2")
    assert parse_local_path("10.0.0.2%eth1") == LocalPath("10.0.0.2", "eth1")
    assert parse_local_path("[2001:db8::1]%wlan0") == LocalPath("2001:db8::1", "wlan0")
    for bad in ("eth0", "10.0.0.2%", "host.example%eth0", ""):
        with pytest.raises(ValueError, match="bad path"):
            parse_local_path(bad)

"""A link that comes back gets its path back: ``tquic client --path`` through a netem relay
whose second link (client source 127.0.0.2) is blackholed for a while, on loopback
without root.

The engine declares the blackholed path failed and abandons it; the client's path
keeper (``tquic.io.path_keeper``) keeps trying from 127.0.0.2 with backoff, and once
the relay forwards again a *new* path ID from 127.0.0.2 is validated and carries part
of the rest of the download.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_run import running_server, server_argv, tquic

from tquic.netem.relay import NetemThread
from tquic.netem.spec import LinkTable, parse_link_option

SIZE = 6_000_000
# 10 Mbit/s per link, 10 ms one way, a queue of about one BDP.
LINK = "rate=10mbit,delay=5ms,queue=30"
# The second link is down from 1.5 s to 3 s after the client's first datagram (in both
# directions).
OUTAGE = (1.5, 3.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("root")
    (directory / "big.bin").write_bytes(os.urandom(SIZE))
    return directory


@pytest.fixture(scope="module")
def server(cert_dir: Path, root: Path) -> Iterator[int]:
    with running_server(server_argv(cert_dir, "--root", str(root))) as port:
        yield port


def _table(outage: str) -> LinkTable:
    table = LinkTable()
    for text in (f"127.0.0.1={LINK}", f"127.0.0.2={LINK},outage={outage}"):
        where, rule = parse_link_option(text)
        assert where is not None
        table = table.with_rule(where, rule)
    return table


def _download(server: int, cert_dir: Path, *extra: str) -> dict[str, Any]:
    start, end = OUTAGE
    # The outage counts from the client's first datagram (epoch "first"), so a slow
    # interpreter start on a busy machine cannot move it before the transfer.
    with NetemThread(("127.0.0.1", 0), ("127.0.0.1", server),
                     _table(f"{start}s-{end}s"), epoch="first") as relay:
        result = tquic("client", f"https://localhost:{relay.address[1]}/big.bin",
                       "--ca", str(cert_dir / "cert.pem"), "--json", "--timeout", "10",
                       "--path", "127.0.0.1", "--path", "127.0.0.2", *extra, timeout=60)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_blackholed_link_rejoins_as_a_new_path_that_carries_data(server: int, cert_dir: Path,
                                                                 root: Path) -> None:
    report = _download(server, cert_dir)
    (result,) = report["results"]
    assert result["error"] is None
    assert result["bytes"] == SIZE
    assert result["sha256"] == hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    paths = report["paths"]
    second = [p for p in paths if p["local"].startswith("127.0.0.2:")]
    # The first path from 127.0.0.2 was lost in the outage ...
    lost = [p for p in second if p["closed_at"] is not None]
    assert lost, paths
    assert all(p["path"] == "127.0.0.2" for p in second)
    # ... and a later path ID from the same address was validated after it and carried
    # part of the body before the transfer ended.
    back = [p for p in second if p["reopened"] and p["validated_at"] is not None
            and p["state"] == "validated"]
    assert back, paths
    (rejoined,) = back
    assert rejoined["path_id"] > max(p["path_id"] for p in lost)
    assert rejoined["validated_at"] >= min(p["closed_at"] for p in lost)
    assert rejoined["bytes_received"] > 100_000, paths
    # Every path ID appears once, each with the local path it served.
    assert len({p["path_id"] for p in paths}) == len(paths)
    assert {p["path"] for p in paths} == {"127.0.0.1", "127.0.0.2"}


def test_no_reopen_leaves_the_returning_link_unused(server: int, cert_dir: Path,
                                                   root: Path) -> None:
    report = _download(server, cert_dir, "--no-reopen")
    (result,) = report["results"]
    assert result["error"] is None and result["bytes"] == SIZE
    second = [p for p in report["paths"] if p["local"].startswith("127.0.0.2:")]
    assert len(second) == 1 and second[0]["closed_at"] is not None, report["paths"]


def test_reopen_options_are_checked() -> None:
    result = tquic("client", "https://localhost:1/x", "--insecure", "--path", "127.0.0.1",
                   "--reopen-delay", "2", "--reopen-max", "1")
    assert result.returncode == 1
    assert "--reopen-max (1 s) must be at least --reopen-delay (2 s)" in result.stderr
    result = tquic("client", "https://localhost:1/x", "--reopen-delay", "0")
    assert result.returncode == 2 and "expected seconds" in result.stderr

"""Fixtures of the control-plane tests: a running listener on a Unix socket (no token) and
on loopback TCP (with a token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from control_running import TOKEN, RunningPlane
from fake_daemon import FakeDaemon


@pytest.fixture
def unix_plane(tmp_path: Path) -> Iterator[RunningPlane]:
    plane = RunningPlane(FakeDaemon(), str(tmp_path / "run" / "bond.sock"), None, 0.2)
    try:
        yield plane
    finally:
        plane.close()


@pytest.fixture
def tcp_plane() -> Iterator[RunningPlane]:
    plane = RunningPlane(FakeDaemon("bond server", clients=2), "127.0.0.1:0", TOKEN, 0.2)
    try:
        yield plane
    finally:
        plane.close()

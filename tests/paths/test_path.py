"""Path state: anti-amplification (RFC 9000 §8.1), validation, scheduler; PMTUD search."""

from __future__ import annotations

from tquic.cc.base import create_controller
from tquic.core.pmtud import Pmtud
from tquic.paths.ack_tracker import AckTracker
from tquic.paths.manager import PathManager
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import PacketSpace, Path, SpaceKind
from tquic.paths.recovery import PathRecovery

NP = NetworkPath(("10.0.0.2", 443), ("10.0.0.1", 1000))


def _path(validated: bool) -> Path:
    recovery = PathRecovery(create_controller("newreno", 1200), 1200, is_client=False)
    return Path(0, NP, recovery, PacketSpace(SpaceKind.APPLICATION, AckTracker(), 0),
                validated=validated)


def test_unvalidated_path_may_send_three_times_what_it_received() -> None:
    path = _path(False)
    assert path.amplification_budget() == 0
    path.bytes_received = 1200
    path.bytes_sent = 1000
    assert path.amplification_budget() == 2600
    path.on_validated()
    assert path.amplification_budget() is None


def test_manager_selects_path_zero_with_one_path() -> None:
    manager = PathManager()
    path = _path(True)
    manager.add(path)
    assert manager.select(0.0) is path
    assert manager.by_network_path(NP) is path


def test_pmtud_tries_the_ceiling_then_binary_searches_after_losses() -> None:
    pmtud = Pmtud(1200, 1452)
    assert pmtud.probe_size(0.0) == 1452
    while (size := pmtud.probe_size(0.0)) is not None:
        pmtud.on_probe_sent(size, 0.0)
        if size <= 1300:
            pmtud.on_probe_acked(size)
        else:
            pmtud.on_probe_lost(size)
    assert 1284 <= pmtud.current <= 1300

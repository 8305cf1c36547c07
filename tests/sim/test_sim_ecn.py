"""ECN in the simulator: codepoints travel through links, a bottleneck CE-marks
(classic step for ECT(0), shallow L4S step for ECT(1)) or bleaches, and the QUIC
engine over it validates ECN and reacts to CE without loss."""

from __future__ import annotations

import random

import interop_cases as ic
import pytest

from tquic.paths.ecn import EcnState
from tquic.paths.network_path import NetworkPath
from tquic.sim import CLIENT_ADDR, SERVER_ADDR, LinkProfile, ProfileError, single_link
from tquic.sim.clock import EventLoop
from tquic.sim.link import Pipe
from tquic.sim.quic import QuicClientEndpoint, QuicServerEndpoint
from tquic.sim.workload import Download

PATH = NetworkPath(CLIENT_ADDR, SERVER_ADDR)
RATE = 20e6
RTT = 0.03
BDP = int(RATE / 8 * RTT)


class Sink:
    def __init__(self) -> None:
        self.got: list[int] = []

    def deliver(self, data: bytes, network_path: NetworkPath, ecn: int = 0) -> None:
        self.got.append(ecn)


def _burst(profile: LinkProfile, marks: list[int]) -> tuple[list[int], Pipe]:
    """Offer 1200-byte datagrams back to back (a growing queue); the marks that arrive."""
    loop = EventLoop()
    pipe = Pipe(loop, profile, random.Random(1), "p")
    sink = Sink()
    for ecn in marks:
        pipe.offer(b"x" * 1200, sink, PATH, ecn)
    loop.run()
    return sink.got, pipe


def test_default_link_carries_every_codepoint_untouched() -> None:
    marks = [0, 1, 2, 3] * 10
    got, pipe = _burst(LinkProfile(rate_bps=1e6), marks)
    assert got == marks and pipe.stats().ce_marked == 0


def test_classic_step_marks_ect_beyond_the_threshold_and_never_not_ect() -> None:
    # 1200 B at 9.6 Mbit/s = 1 ms each: the n-th datagram waits n ms.
    profile = LinkProfile(rate_bps=9.6e6, ecn="classic", ecn_threshold=0.0045)
    got, pipe = _burst(profile, [2] * 10 + [0] * 3 + [1] * 3)
    assert got[:5] == [2] * 5  # waited 0..4 ms
    assert got[5:10] == [3] * 5  # 5..9 ms: CE instead of a deeper queue
    assert got[10:13] == [0] * 3  # Not-ECT is never marked (RFC 3168 §5)
    assert got[13:] == [3] * 3  # classic AQM treats ECT(1) like ECT(0)
    assert pipe.stats().ce_marked == 8


def test_l4s_marks_ect1_at_the_shallow_step_and_ect0_as_classic() -> None:
    profile = LinkProfile(rate_bps=9.6e6, ecn="l4s", l4s_threshold=0.0015,
                          ecn_threshold=0.0045)
    got, _ = _burst(profile, [1, 1, 1, 1, 2, 2, 2, 2])
    assert got == [1, 1, 3, 3, 2, 3, 3, 3]


def test_bleach_clears_the_field_and_a_full_queue_still_drops() -> None:
    got, pipe = _burst(LinkProfile(rate_bps=1e6, ecn="bleach"), [2, 1, 3])
    assert got == [0, 0, 0] and pipe.stats().bleached == 3
    got, pipe = _burst(LinkProfile(rate_bps=1e6, queue_packets=2, ecn="classic",
                                   ecn_threshold=0.0), [2] * 4)
    assert got == [2, 3] and pipe.stats().drops("queue") == 2


def test_profile_validates_the_ecn_fields() -> None:
    with pytest.raises(ProfileError, match="ecn"):
        LinkProfile(rate_bps=1e6, ecn="red")
    with pytest.raises(ProfileError, match="ecn_threshold"):
        LinkProfile(rate_bps=1e6, ecn="classic", ecn_threshold=-1.0)
    with pytest.raises(ProfileError, match="ecn"):
        LinkProfile(ecn="classic")  # marking needs a queue


def _download(cc: str, profile: LinkProfile, size: int = 3_000_000) -> tuple[object, object]:
    client = QuicClientEndpoint()
    server = QuicServerEndpoint(ic.server_config(congestion_control=cc))
    report = single_link("ecn", profile, max_time=30).run(
        client, server, Download(client, server, ic.client_config(), [size]))
    assert report.completed, report.failure
    return report, server.connections[0].paths.primary.recovery


def test_quic_over_a_bleaching_link_fails_validation_and_still_completes() -> None:
    profile = LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=BDP, ecn="bleach")
    report, recovery = _download("cubic", profile)
    assert recovery.ecn.state is EcnState.FAILED  # type: ignore[attr-defined]
    down = report.links[0].down  # type: ignore[attr-defined]
    # Marked only while testing: a handful of datagrams, then unmarked for good.
    assert 0 < down.bleached <= 12
    assert "bleach" in report.table()  # type: ignore[attr-defined]


def test_classic_ecn_link_signals_congestion_by_ce_instead_of_loss() -> None:
    profile = LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=4 * BDP, ecn="classic")
    report, recovery = _download("cubic", profile)
    down = report.links[0].down  # type: ignore[attr-defined]
    assert recovery.ecn.state is EcnState.CAPABLE  # type: ignore[attr-defined]
    assert down.ce_marked > 10 and down.drops("queue") == 0
    assert recovery.packets_lost == 0  # type: ignore[attr-defined]
    assert recovery.controller.congestion_events >= 1  # type: ignore[attr-defined]
    # Without ECN the same deep queue overflows: CUBIC finds the limit by loss.
    plain = LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=4 * BDP)
    report, recovery = _download("cubic", plain)
    assert report.links[0].down.drops("queue") > 0  # type: ignore[attr-defined]


def test_prague_on_an_l4s_link_marks_ect1_and_keeps_the_queue_shallow() -> None:
    profile = LinkProfile(rate_bps=RATE, delay=RTT / 2, queue_bytes=4 * BDP, ecn="l4s")
    report, recovery = _download("prague", profile)
    assert recovery.ecn.state is EcnState.CAPABLE  # type: ignore[attr-defined]
    assert recovery.ecn.codepoint == 1  # type: ignore[attr-defined]
    down = report.links[0].down  # type: ignore[attr-defined]
    assert down.ce_marked > 10 and down.drops("queue") == 0
    assert recovery.packets_lost == 0  # type: ignore[attr-defined]
    assert recovery.controller.alpha < 0.5  # type: ignore[attr-defined]

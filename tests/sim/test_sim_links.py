"""The link model: rate, delay, jitter, loss, bursts, queue, outages, reordering, corruption."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tquic.paths.network_path import NetworkPath
from tquic.sim import (
    CLIENT_ADDR,
    SERVER_ADDR,
    GilbertElliott,
    LinkProfile,
    LinkSpec,
    Outage,
    ProfileError,
    Report,
    Scenario,
    Side,
    single_link,
)
from tquic.sim.dummy import Blaster, BlastWorkload, Echo, Received

PATH = NetworkPath(CLIENT_ADDR, SERVER_ADDR)


def blast(
    profile: LinkProfile,
    count: int,
    *,
    size: int = 1200,
    interval: float = 0.0,
    seed: int = 1,
    max_time: float = 100.0,
) -> tuple[Report, Blaster, Echo]:
    client = Blaster(PATH, count, size, interval)
    server = Echo()
    report = single_link("blast", profile, seed=seed, max_time=max_time).run(
        client, server, BlastWorkload(count)
    )
    return report, client, server


def one_way(server: Echo) -> list[float]:
    return [r.received_at - r.sent_at for r in server.received]


def test_rate_serialises_each_datagram_back_to_back() -> None:
    # 1250 B at 1 Mbit/s = 10 ms each; sent together, the i-th leaves at (i+1)*10 ms.
    report, _, server = blast(LinkProfile(rate_bps=1e6), 10, size=1250)
    arrivals = [r.received_at for r in server.received]
    assert arrivals == pytest.approx([0.01 * (i + 1) for i in range(10)], abs=1e-12)
    assert report.completion_time == pytest.approx(0.1)
    assert report.links[0].up.delivered_bytes == 12500


def test_per_datagram_overhead_counts_against_the_rate() -> None:
    _, _, server = blast(LinkProfile(rate_bps=1e6, overhead_bytes=28), 2, size=1222)
    assert [r.received_at for r in server.received] == pytest.approx([0.01, 0.02])


def test_delay_is_added_after_serialisation() -> None:
    _, _, server = blast(LinkProfile(rate_bps=1e6, delay=0.03), 3, size=1250)
    assert [r.received_at for r in server.received] == pytest.approx([0.04, 0.05, 0.06])


def test_jitter_stays_within_bounds_and_keeps_order() -> None:
    _, _, server = blast(LinkProfile(delay=0.05, jitter=0.01), 2000, interval=0.001)
    delays = one_way(server)
    assert min(delays) >= 0.04 - 1e-12 and max(delays) <= 0.06 + 1e-12
    assert min(delays) < 0.042 and max(delays) > 0.058  # the whole range is used
    assert [r.seq for r in server.received] == list(range(2000))


def test_jitter_may_reorder_when_asked() -> None:
    _, _, server = blast(
        LinkProfile(delay=0.05, jitter=0.01, jitter_reorders=True), 2000, interval=0.001
    )
    seqs = [r.seq for r in server.received]
    assert sorted(seqs) == list(range(2000)) and seqs != sorted(seqs)
    assert max(one_way(server)) <= 0.06 + 1e-12


def test_random_loss_rate_is_within_statistical_bounds() -> None:
    n, p = 20_000, 0.1
    report, _, server = blast(LinkProfile(loss=p), n, interval=0.0001)
    lost = n - len(server.received)
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(lost - n * p) < 5 * sigma
    assert report.links[0].up.drops("loss") == lost


def _burst_lengths(received: list[Received], n: int) -> list[int]:
    got = {r.seq for r in received}
    bursts, run = [], 0
    for seq in range(n):
        if seq in got:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    if run:
        bursts.append(run)
    return bursts


def test_gilbert_elliott_loss_comes_in_bursts() -> None:
    n = 40_000
    ge = GilbertElliott(p=0.01, r=0.25)  # mean burst 1/r = 4, mean loss 0.0385
    _, _, bursty = blast(LinkProfile(bursty=ge), n, interval=0.0001)
    _, _, uniform = blast(LinkProfile(loss=ge.mean_loss), n, interval=0.0001)
    b = _burst_lengths(bursty.received, n)
    u = _burst_lengths(uniform.received, n)
    assert sum(b) / n == pytest.approx(ge.mean_loss, rel=0.2)
    assert sum(b) / len(b) == pytest.approx(4.0, rel=0.2)
    assert sum(u) / len(u) < 1.2  # independent loss: bursts of about one


def test_queue_tail_drops_beyond_its_packet_limit() -> None:
    report, _, server = blast(LinkProfile(rate_bps=1e6, queue_packets=5), 20, size=1250)
    assert [r.seq for r in server.received] == [0, 1, 2, 3, 4]
    assert report.links[0].up.drops("queue") == 15


def test_queue_byte_limit_counts_wire_bytes() -> None:
    profile = LinkProfile(rate_bps=1e6, queue_bytes=3000, overhead_bytes=28)
    report, _, server = blast(profile, 10, size=972)  # 1000 wire bytes: 3 fit
    assert len(server.received) == 3
    assert report.links[0].up.drops("queue") == 7


def test_queue_frees_space_as_datagrams_leave() -> None:
    # Sending at exactly the link rate never builds a queue: nothing dropped.
    report, _, server = blast(
        LinkProfile(rate_bps=1e6, queue_packets=1), 50, size=1250, interval=0.01
    )
    assert len(server.received) == 50 and report.links[0].up.total_dropped == 0


def test_outage_drops_exactly_the_datagrams_sent_in_its_window() -> None:
    profile = LinkProfile(delay=0.01, outages=(Outage(0.2, 0.5),))
    report, client, server = blast(profile, 100, interval=0.01)
    got = {r.seq for r in server.received}
    expected = {i for i, t in enumerate(client.send_times) if not 0.2 <= t < 0.5}
    assert got == expected and len(got) == 70
    assert report.links[0].up.drops("outage") == 30
    assert max(s.duration for s in report.stalls) == pytest.approx(0.31)


def test_link_that_goes_down_for_good() -> None:
    report, _, server = blast(LinkProfile(outages=(Outage(0.5),)), 100, interval=0.01)
    assert len(server.received) == 50 and not report.completed


def test_reordering_holds_back_a_share_of_datagrams() -> None:
    _, _, server = blast(
        LinkProfile(delay=0.01, reorder=0.1, reorder_delay=0.02), 2000, interval=0.001
    )
    late = [r for r in server.received if r.received_at - r.sent_at > 0.015]
    assert 0.07 < len(late) / 2000 < 0.13
    seqs = [r.seq for r in server.received]
    assert seqs != sorted(seqs) and sorted(seqs) == list(range(2000))


def test_corruption_flips_bits_in_a_copy_and_is_counted() -> None:
    n = 5000
    report, _, server = blast(LinkProfile(corrupt=0.2), n, interval=0.0001)
    bad = sum(r.corrupted for r in server.received)
    assert len(server.received) == n  # corrupted datagrams still arrive
    assert report.links[0].up.drops("corruption") == bad
    assert abs(bad - 0.2 * n) < 5 * math.sqrt(n * 0.2 * 0.8)


def test_asymmetric_directions_use_their_own_profile() -> None:
    spec = LinkSpec(LinkProfile(delay=0.01), LinkProfile(delay=0.05), CLIENT_ADDR, SERVER_ADDR)
    client, server = Blaster(PATH, 5, interval=0.1), Echo(echo=True)
    Scenario("asym", (spec,)).run(client, server, BlastWorkload(5, sink=Side.CLIENT))
    assert [r.received_at - r.sent_at for r in client.received] == pytest.approx([0.06] * 5)


@pytest.mark.parametrize(
    ("field", "value"),
    [("rate_bps", 0.0), ("delay", -1.0), ("loss", 1.5), ("queue_packets", 0), ("corrupt", -0.1)],
)
def test_profile_rejects_bad_fields_naming_them(field: str, value: float) -> None:
    with pytest.raises(ProfileError, match=field):
        replace(LinkProfile(), **{field: value})  # type: ignore[arg-type]


def test_gilbert_elliott_and_outage_validate() -> None:
    with pytest.raises(ProfileError, match=r"gilbert_elliott\.r"):
        GilbertElliott(p=0.1, r=0.0)
    with pytest.raises(ProfileError, match=r"outage\.end"):
        Outage(2.0, 1.0)

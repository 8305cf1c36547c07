"""The shared BBR pieces: windowed max filter and delivery-rate sampler
(draft-cheng-iccrg-delivery-rate-estimation §3)."""

from __future__ import annotations

import pytest

from tquic.cc.base import AckedPacket, LostPacket, SentInfo
from tquic.cc.bbr_common import DeliveryRateSampler, WindowedMaxFilter, send_quantum

MDS = 1200


def test_max_filter_keeps_the_max_within_the_window_and_forgets_it_after() -> None:
    f = WindowedMaxFilter(10)
    f.update(0, 100.0)
    for t in range(1, 10):
        assert f.update(t, 50.0) == 100.0
    # Round 11 is more than 10 rounds after the max: it expires.
    assert f.update(11, 50.0) == 50.0


def test_max_filter_takes_a_new_max_at_once() -> None:
    f = WindowedMaxFilter(10)
    f.update(0, 10.0)
    assert f.update(1, 30.0) == 30.0
    assert f.value == 30.0


def _send(s: DeliveryRateSampler, pn: int, t: float, inflight: int, app: bool = False) -> None:
    s.on_packet_sent(SentInfo(pn, MDS, t, inflight, app))


def test_sampler_measures_the_rate_of_a_paced_flow() -> None:
    s = DeliveryRateSampler()
    # One packet per ms (1.2 MB/s), each acknowledged 100 ms after it was sent.
    rs = None
    for i in range(400):
        t = i * 0.001
        if i >= 100:
            rs = s.on_ack([AckedPacket(i - 100, MDS, (i - 100) * 0.001)], t, 0.099)
        _send(s, i, t, (min(i, 100) + 1) * MDS)
    assert rs is not None and rs.valid
    assert abs(rs.delivery_rate - 1.2e6) / 1.2e6 < 0.02
    assert s.delivered == 300 * MDS


def test_first_flight_is_measured_over_the_whole_round_trip() -> None:
    s = DeliveryRateSampler()
    for pn in range(10):
        _send(s, pn, 0.0, (pn + 1) * MDS)
    rs = None
    for pn in range(10):
        rs = s.on_ack([AckedPacket(pn, MDS, 0.0)], 0.1 + pn * 0.001, 0.0)
    # draft-cheng §3.3: ack_elapsed runs from the last delivery before sending (t=0).
    assert rs is not None and rs.valid
    assert rs.delivery_rate == pytest.approx(10 * MDS / 0.109)


def test_sample_shorter_than_min_rtt_is_not_valid() -> None:
    s = DeliveryRateSampler()
    _send(s, 0, 0.0, MDS)
    _send(s, 1, 0.0, 2 * MDS)
    rs = s.on_ack([AckedPacket(0, MDS, 0.0), AckedPacket(1, MDS, 0.0)], 0.05, 0.1)
    assert not rs.valid
    assert rs.newly_acked == 2 * MDS


def test_app_limited_marking_lasts_until_the_flight_is_delivered() -> None:
    s = DeliveryRateSampler()
    _send(s, 0, 0.0, MDS, app=True)
    assert s.app_limited_until == MDS
    _send(s, 1, 0.001, 2 * MDS)
    rs = s.on_ack([AckedPacket(0, MDS, 0.0)], 0.1, 0.0)
    assert rs.is_app_limited
    rs = s.on_ack([AckedPacket(1, MDS, 0.001)], 0.101, 0.0)
    assert rs.is_app_limited  # sent while the app-limited flight was in flight
    assert s.app_limited_until == 0  # but the phase is over now


def test_loss_counts_bytes_and_returns_the_send_state() -> None:
    s = DeliveryRateSampler()
    _send(s, 0, 0.0, MDS)
    _send(s, 1, 0.0, 2 * MDS)
    states = s.on_loss([LostPacket(1, MDS, 0.0)])
    assert s.lost == MDS
    assert len(states) == 1
    state, lost_after = states[0]
    assert state.tx_in_flight == 2 * MDS and state.lost == 0 and lost_after == MDS


def test_loss_batch_charges_each_packet_only_the_losses_up_to_it() -> None:
    # draft-ietf-ccwg-bbr "BBRHandleLostPacket" runs as each packet is marked lost:
    # C.lost - P.lost for the first packet of a batch must not include the later ones.
    s = DeliveryRateSampler()
    for pn in range(3):
        _send(s, pn, 0.0, (pn + 1) * MDS)
    out = s.on_loss([LostPacket(pn, MDS, 0.0) for pn in range(3)])
    assert [lost_after - st.lost for st, lost_after in out] == [MDS, 2 * MDS, 3 * MDS]


def test_send_quantum_steps() -> None:
    assert send_quantum(1e5, MDS) == MDS
    assert send_quantum(1e6, MDS) == 2 * MDS
    assert send_quantum(1e7, MDS) == 10_000
    assert send_quantum(1e9, MDS) == 64 * 1024


@pytest.mark.parametrize("name", ["bbr1", "bbr2", "bbr3"])
def test_a_clock_far_from_zero_does_not_start_in_probe_rtt(name: str) -> None:
    # A real connection's clock is monotonic time since boot; the simulator's starts
    # at 0.  The empty min-RTT filter once counted as "10 s old" on a real clock, so
    # every connection (and every new path) spent its first 200 ms in ProbeRTT at 4
    # packets.  The same pipe started at 0 s and at 5,000 s must behave alike.
    from cc_pipe import Pipe

    from tquic.cc import create_controller

    delivered = {}
    for start in (0.0, 5000.0):
        cc = create_controller(name, MDS)
        pipe = Pipe(cc, 2.5e6, 0.03)
        pipe.now = start
        states = set()
        t = start
        while t < start + 1.0:
            t += 0.002
            pipe.run_until(t)
            states.add(cc.state.value)  # type: ignore[attr-defined]
        assert "probe_rtt" not in states, (name, start)
        delivered[start] = pipe.delivered
    # Startup reached the link's rate in both: the same bytes within 5 %.
    assert delivered[5000.0] == pytest.approx(delivered[0.0], rel=0.05)

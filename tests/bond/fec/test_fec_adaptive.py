"""Adaptive repair: follows measured loss and its bursts, stays under the overhead ceiling,
goes quiet when loss is negligible, and sends repairs on another path than the sources."""

from __future__ import annotations

import random

from fec_helpers import udp4

from tquic.bond.fec import AdaptiveRepair, FecConfig, FecSession, PathLoss
from tquic.bond.fec.wire import REPAIR_HEADER, SOURCE_HEADER


def _feed(loss: PathLoss | AdaptiveRepair, n: int, p: float, run: float, seed: int,
          path: int = 0) -> None:
    """n outcomes of a Gilbert-Elliott chain with mean loss p and mean loss run ``run``."""
    rng = random.Random(seed)
    r = 1.0 / run
    to_bad = r * p / (1.0 - p)
    bad = False
    for _ in range(n):
        if isinstance(loss, PathLoss):
            loss.observe(bad)
        else:
            loss.observe(path, bad)
        bad = rng.random() >= r if bad else rng.random() < to_bad


def test_path_loss_measures_mean_and_loss_runs() -> None:
    random_loss, bursty = PathLoss(), PathLoss()
    _feed(random_loss, 20_000, 0.05, 1.0, seed=1)
    _feed(bursty, 20_000, 0.05, 4.0, seed=2)
    a, b = random_loss.estimate(), bursty.estimate()
    assert 0.03 < a.mean < 0.07 and a.run < 1.4
    assert 0.02 < b.mean < 0.09 and 2.5 < b.run < 6.0


def test_no_repairs_while_loss_is_negligible() -> None:
    policy = AdaptiveRepair(prior=0.0)
    _feed(policy, 5000, 0.0005, 1.0, seed=3)
    assert policy.plan([0] * 12, 12 * 1200, 1202).m == 0


def test_more_loss_and_longer_bursts_get_more_repairs() -> None:
    plans = {}
    for name, p, run in (("1%", 0.01, 1.0), ("5%", 0.05, 1.0), ("5% bursts", 0.05, 3.0)):
        policy = AdaptiveRepair(max_overhead=1.0)
        _feed(policy, 20_000, p, run, seed=4)
        plans[name] = policy.plan([0] * 12, 12 * 1200, 1202).m
    assert 0 < plans["1%"] < plans["5%"] < plans["5% bursts"]


def test_overhead_ceiling_holds_in_bytes() -> None:
    policy = AdaptiveRepair(max_overhead=0.25)
    _feed(policy, 20_000, 0.2, 2.0, seed=5)  # far more loss than 25 % can repair
    for k, size in ((16, 1200), (12, 1200), (8, 600), (2, 200)):
        plan = policy.plan([0] * k, k * size, size + 2)
        assert plan.m * (size + 2 + REPAIR_HEADER) + k * SOURCE_HEADER <= 0.25 * k * size
    assert policy.plan([0] * 16, 16 * 1200, 1202).m >= 2


def test_repairs_go_on_another_path_than_the_sources() -> None:
    policy = AdaptiveRepair()
    _feed(policy, 2000, 0.0, 1.0, seed=6, path=0)
    _feed(policy, 2000, 0.05, 1.0, seed=7, path=1)
    assert policy.plan([1] * 10, 12000, 1202).path == 0
    assert policy.plan([0, 1] * 5, 12000, 1202).path == 0  # both used: the cleaner one
    lone = AdaptiveRepair()
    assert lone.plan([None] * 4, 4000, 1002).path is None  # no path known: no hint


def _run(session_tx: FecSession, session_rx: FecSession, loss: float, n: int, seed: int
         ) -> tuple[int, int]:
    """n 1200-byte STUN packets every 2 ms through a link with random loss; feedback
    returns 20 ms later. Returns (packets delivered, repairs sent)."""
    rng = random.Random(seed)
    delivered = 0
    feedback: list[tuple[float, bytes]] = []
    for i in range(n):
        now = i * 0.002
        outs = session_tx.send(udp4(3478, bytes(1172)), now) + session_tx.poll(now)
        for o in outs:
            if rng.random() >= loss:
                delivered += len(session_rx.receive(o.payload, now))
        feedback += [(now + 0.02, o.payload) for o in session_rx.poll(now)]
        while feedback and feedback[0][0] <= now:
            session_tx.receive(feedback.pop(0)[1], now)
    return delivered, session_tx.stats().repairs_sent


def test_adaptive_meets_the_target_at_5_percent_random_loss() -> None:
    cfg = FecConfig(mode="adaptive", block=16, max_delay=0.025)
    tx, rx = FecSession(cfg), FecSession(cfg)
    _run(tx, rx, 0.05, 2000, seed=8)  # learn the link
    before = tx.stats()
    rx_before = rx.stats()
    delivered, _ = _run(tx, rx, 0.05, 8000, seed=9)
    after = tx.stats()
    residual = 1 - delivered / 8000
    overhead = (after.repair_bytes - before.repair_bytes + after.header_bytes
                - before.header_bytes) / (after.source_bytes - before.source_bytes)
    assert residual <= 0.005, residual
    assert overhead <= 0.25, overhead
    assert rx.stats().recovered > rx_before.recovered


def test_adaptive_stops_repairs_when_the_loss_goes_away() -> None:
    tx, rx = FecSession(), FecSession()
    _run(tx, rx, 0.05, 3000, seed=10)
    _run(tx, rx, 0.0, 6000, seed=11)  # the estimate decays below off_below
    repairs_before = tx.stats().repairs_sent
    _run(tx, rx, 0.0, 1000, seed=12)
    assert tx.stats().repairs_sent == repairs_before


def test_a_call_block_closes_on_its_second_packet_within_the_delay_bound() -> None:
    # 50 packets/s: the third packet would come after the 25 ms bound, so the block of
    # two closes when the second is sent; its repair follows 2 ms later (repair_spacing:
    # never in the same QUIC packet as the source).
    tx = FecSession(FecConfig(mode="xor", block=8, max_delay=0.025))
    for i in range(6):
        t = i * 0.02
        assert [o.kind for o in tx.send(udp4(3478, bytes(160)), t)] == ["source"]
        if i % 2:  # the second of a pair closed the block
            assert tx.next_timeout() == t + 0.002
            assert tx.poll(t + 0.0019) == []
        assert [o.kind for o in tx.poll(t + 0.002)] == (["repair"] if i % 2 else [])


def test_a_block_too_small_for_a_repair_waits_for_its_deadline_not_a_pause() -> None:
    # 1000-byte packets under a 25 % ceiling: a repair needs >= 5 sources, so a pause after
    # two does not close the block (it would go out with no repair at all).
    tx = FecSession(FecConfig(mode="adaptive", max_delay=0.025))
    for t in (0.0, 0.0001, 0.0002):
        tx.send(udp4(20000, bytes(972)), t)
    assert tx.next_timeout() == 0.025
    for i in range(3, 6):
        tx.send(udp4(20000, bytes(972)), i * 0.0001)
    timeout = tx.next_timeout()
    assert timeout is not None and timeout < 0.01  # big enough now: a pause closes it


def test_every_repair_leaves_even_when_polled_late() -> None:
    # Found in real time: a late poll that closed a block threw away the repairs of the
    # blocks before it that had come due meanwhile.
    tx = FecSession(FecConfig(mode="rs", block=4, repairs=2))
    released = 0
    t = 0.0
    for frame in range(20):
        for i in range(6):
            t = frame * 0.033 + i * 0.0003
            released += sum(o.kind == "repair" for o in tx.send(udp4(20000, bytes(900)), t))
        # the event loop is late: the next poll comes 20 ms after the frame
        released += sum(o.kind == "repair" for o in tx.poll(t + 0.02))
    released += sum(o.kind == "repair" for o in tx.poll(t + 1.0))
    assert released == tx.stats().repairs_sent > 0

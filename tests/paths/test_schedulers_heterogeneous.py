"""minrtt vs blest vs ecf on heterogeneous paths: hand-computed decisions, then a transfer.

The transfer is a small event loop over real PathRecovery objects (fixed windows,
no loss): packets are sent while the chosen path has room and acknowledged one
RTT later, so the RTT estimators see real samples.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import pytest
from sched_paths import MDS, make_path

from tquic.paths.path import Path
from tquic.paths.recovery import SentPacket, SpaceId
from tquic.paths.schedulers.blest import BlestScheduler
from tquic.paths.schedulers.ecf import EcfScheduler
from tquic.paths.schedulers.extended import SchedulerBase, SchedulerHooks, fastest, has_room
from tquic.paths.schedulers.minrtt import MinRttScheduler


class Overflow(SchedulerBase):
    """The baseline: the fastest path with room (min-RTT that spills over when full)."""

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        ready = [p for p in paths if has_room(p)]
        return fastest(ready) if ready else fastest(paths)


def fast_full_slow_free() -> tuple[Path, Path]:
    fast = make_path(0, 0.020, cwnd=10 * MDS, in_flight=10 * MDS, rttvar=0.001)
    slow = make_path(1, 0.200, cwnd=10 * MDS, rttvar=0.010)
    return fast, slow


@pytest.mark.parametrize("scheduler", [MinRttScheduler(), BlestScheduler(), EcfScheduler()])
def test_fast_path_with_room_is_always_chosen(scheduler: SchedulerBase) -> None:
    fast = make_path(0, 0.020)
    slow = make_path(1, 0.200)
    assert scheduler.select([slow, fast], 0.0) is fast


def test_blest_estimate_matches_the_paper_formula() -> None:
    fast, slow = fast_full_slow_free()
    # ratio = 10; X = (12000 + 1200 * 9 / 2) * 10 = 174000 bytes.
    # room = M - (inflight_s + MSS_s) = M - 1200.
    assert BlestScheduler(send_window=175_201).would_block(fast, slow) is False  # room 174001
    assert BlestScheduler(send_window=175_200).would_block(fast, slow) is False  # room == X
    assert BlestScheduler(send_window=175_199).would_block(fast, slow) is True
    # lambda scales X: 174000 * 1.1 = 191400.
    assert BlestScheduler(lam=1.1, send_window=190_000).would_block(fast, slow) is True


def test_blest_uses_the_slow_path_only_when_it_does_not_block_the_fast_one() -> None:
    fast, slow = fast_full_slow_free()
    roomy = BlestScheduler()  # 1 MiB window: a slow packet cannot block
    assert roomy.select([fast, slow], 0.0) is slow
    tight = BlestScheduler()
    tight.set_send_state(backlog_bytes=None, send_window=150_000)
    assert tight.select([fast, slow], 0.0) is fast  # wait for the fast path
    assert tight.skipped == 1
    slow.recovery.bytes_in_flight = 5 * MDS  # slow in-flight data eats the window too
    assert BlestScheduler(send_window=180_000).select([fast, slow], 0.0) is fast


def test_blest_lambda_adapts_within_bounds() -> None:
    b = BlestScheduler()
    for _ in range(500):
        b.on_blocked()
    assert b.lam == pytest.approx(2.0)
    for _ in range(500):
        b.on_unblocked()
    assert b.lam == pytest.approx(0.5)


def test_ecf_waits_when_the_fast_path_finishes_the_backlog_first() -> None:
    fast, slow = fast_full_slow_free()
    ecf = EcfScheduler()
    # k = 24000: n = 3, 3 * 0.02 = 0.06 < 0.21 = rtt_s + delta;
    # (k / cwnd_s) * rtt_s = 0.4 >= 2 * 0.02 + 0.01 = 0.05 -> wait.
    ecf.set_send_state(24_000, None)
    assert ecf.select([fast, slow], 0.0) is fast
    assert ecf.waiting is True


def test_ecf_sends_on_the_slow_path_for_a_large_backlog() -> None:
    fast, slow = fast_full_slow_free()
    ecf = EcfScheduler()
    ecf.set_send_state(1_200_000, None)  # n = 101: 2.02 s > 0.21 s
    assert ecf.select([fast, slow], 0.0) is slow
    assert ecf.waiting is False


def test_ecf_counts_at_least_one_round_for_a_tiny_backlog() -> None:
    fast, slow = fast_full_slow_free()
    ecf = EcfScheduler()
    # k = 1200 < cwnd: k_f = k_s = 12000, n = 2: 0.04 < 0.21; 1 * 0.2 >= 0.05 -> wait.
    ecf.set_send_state(1200, None)
    assert ecf.select([fast, slow], 0.0) is fast
    # The same tiny backlog with a slow path only a little slower: n * rtt_f = 0.04 is
    # not below rtt_s + delta = 0.03 + 0.01, so waiting does not pay: send on it.
    slow.recovery.rtt.smoothed_rtt = 0.030
    ecf.waiting = False
    assert ecf.select([fast, slow], 0.0) is slow


def test_ecf_hysteresis_keeps_waiting() -> None:
    fast, slow = fast_full_slow_free()
    ecf = EcfScheduler()
    ecf.set_send_state(126_000, None)  # n = 11.5: 0.23 s, between 0.21 and 1.25 * 0.21
    assert ecf.select([fast, slow], 0.0) is slow  # not waiting: 0.23 >= 0.21
    ecf.waiting = True
    assert ecf.select([fast, slow], 0.0) is fast  # waiting: 0.23 < 0.2625
    assert ecf.waiting is True


def test_ecf_without_a_backlog_estimate_spills_over() -> None:
    fast, slow = fast_full_slow_free()
    assert EcfScheduler().select([fast, slow], 0.0) is slow


# -- a transfer --------------------------------------------------------------------------


def transfer(scheduler: SchedulerBase, rtts: tuple[float, ...], cwnd_packets: int,
             total_packets: int, send_window: int | None = None) -> tuple[float, list[int]]:
    """Send ``total_packets`` full datagrams; returns (time the last one arrives, per-path
    packet counts).  Arrival = send time + rtt / 2; the ACK returns at send + rtt.  Each
    path starts with one RTT sample, as path validation (PATH_CHALLENGE) gives it."""
    paths = [make_path(i, rtt, cwnd=cwnd_packets * MDS) for i, rtt in enumerate(rtts)]
    hooks = SchedulerHooks(scheduler)
    acks: list[tuple[float, int, int]] = []  # (time, path index, packet number)
    next_pn = [0] * len(paths)
    counts = [0] * len(paths)
    remaining = total_packets
    last_arrival = 0.0
    now = 0.0
    for _ in range(100_000):
        while remaining:
            hooks.set_send_state(remaining * MDS, send_window)
            path = hooks.select(paths, now)
            if path is None or not has_room(path):
                break
            i = path.path_id
            pn = next_pn[i]
            next_pn[i] += 1
            path.recovery.on_packet_sent(SentPacket(pn, now, MDS, True, True), now)
            counts[i] += 1
            remaining -= 1
            last_arrival = max(last_arrival, now + rtts[i] / 2)
            heapq.heappush(acks, (now + rtts[i], i, pn))
        if not acks:
            break
        now, i, pn = heapq.heappop(acks)
        paths[i].recovery.on_ack_received(SpaceId.APPLICATION, ((pn, pn),), 0.0, now)
    assert remaining == 0
    return last_arrival, counts


def test_ecf_and_blest_finish_a_short_transfer_sooner_than_overflow() -> None:
    # Fast path 20 ms, slow path 400 ms, windows of 10 packets, 60 packets to send.
    rtts = (0.020, 0.400)
    overflow_done, overflow_counts = transfer(Overflow(), rtts, 10, 60)
    ecf_done, ecf_counts = transfer(EcfScheduler(), rtts, 10, 60)
    blest_done, blest_counts = transfer(BlestScheduler(), rtts, 10, 60, send_window=60_000)
    # Overflow fills the slow path's window as soon as the fast one is full, so
    # its last packet lands 200 ms (one way on the slow path) after the start.
    assert overflow_counts[1] >= 10
    assert overflow_done >= 0.2
    # ECF and BLEST wait for the fast path: six 20 ms rounds, about 110 ms.
    assert ecf_counts[1] == 0 and blest_counts[1] == 0
    assert ecf_done < 0.12 and blest_done < 0.12


def test_a_long_transfer_uses_both_paths_under_ecf() -> None:
    rtts = (0.020, 0.060)
    _, counts = transfer(EcfScheduler(), rtts, 10, 2000)
    assert counts[1] > 200  # the slow path adds capacity when the backlog is large
    assert counts[0] > counts[1]

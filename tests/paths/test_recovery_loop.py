"""PathRecovery driven by a tiny deterministic link: the pieces work together.

A sender limited only by its congestion window and pacer sends over a 50 ms
round trip that drops every 40th packet; the receiver acknowledges every second
packet.  Whatever the controller, every packet ends up acknowledged or declared
lost, nothing stays in flight, and the window reacts to the losses.
"""

from __future__ import annotations

import heapq

import pytest

from tquic.cc import create_controller
from tquic.paths.recovery import PathRecovery, SentPacket, SpaceId

MDS = 1200
ONE_WAY = 0.025
APP = SpaceId.APPLICATION


def ranges_of(received: set[int]) -> tuple[tuple[int, int], ...]:
    """Inclusive (smallest, largest) ranges, largest first, at most 32 (like an ACK frame)."""
    out: list[tuple[int, int]] = []
    for pn in sorted(received, reverse=True):
        if out and out[-1][0] == pn + 1:
            out[-1] = (pn, out[-1][1])
        else:
            if len(out) == 32:
                break
            out.append((pn, pn))
    return tuple(out)


def run(cc: str, packets: int, drop_every: int) -> PathRecovery:
    r = PathRecovery(create_controller(cc, MDS), MDS, is_client=False, path_id=1)
    now = 0.0
    next_pn = 0
    received: set[int] = set()
    unacked_arrivals = 0
    events: list[tuple[float, int, str, int]] = []  # (time, seq, kind, pn)
    seq = 0
    max_cwnd = r.controller.congestion_window
    steps = 0
    while next_pn < packets or r.bytes_in_flight:
        steps += 1
        assert steps < 200_000, "the loop does not make progress"
        # Send whatever the window and the pacer allow now.
        while next_pn < packets and r.can_send(MDS) and r.next_send_time(now, MDS) <= now:
            r.on_packet_sent(SentPacket(next_pn, now, MDS, True, True, APP), now)
            if next_pn % drop_every != drop_every - 1:
                heapq.heappush(events, (now + ONE_WAY, seq, "arrive", next_pn))
                seq += 1
            next_pn += 1
        max_cwnd = max(max_cwnd, r.controller.congestion_window)
        # Next thing to happen: an arrival/ACK, the loss timer, or the pacer.
        candidates = []
        if events:
            candidates.append(events[0][0])
        deadline = r.loss_detection_deadline()
        if deadline is not None:
            candidates.append(deadline)
        if next_pn < packets and r.can_send(MDS):
            candidates.append(r.next_send_time(now, MDS))
        assert candidates, "nothing left to wake the sender"
        now = max(now, min(candidates))
        while events and events[0][0] <= now:
            _, _, kind, pn = heapq.heappop(events)
            if kind == "arrive":
                received.add(pn)
                unacked_arrivals += 1
                if unacked_arrivals >= 2 or next_pn >= packets:
                    unacked_arrivals = 0
                    heapq.heappush(events, (now + ONE_WAY, seq, "ack", max(received)))
                    seq += 1
            else:
                r.on_ack_received(APP, ranges_of({p for p in received if p <= pn}), 0.0, now)
        deadline = r.loss_detection_deadline()
        if deadline is not None and deadline <= now:
            outcome = r.on_loss_detection_timeout(now)
            for _ in range(outcome.probe_packets):
                # Probes: a new packet even when the window is full (RFC 9002 §7.5).
                r.on_packet_sent(SentPacket(next_pn, now, MDS, True, True, APP), now)
                heapq.heappush(events, (now + ONE_WAY, seq, "arrive", next_pn))
                seq += 1
                next_pn += 1
    assert max_cwnd > 12000  # it grew before the losses
    return r


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_lossy_transfer_accounts_for_every_packet(cc: str) -> None:
    r = run(cc, packets=3000, drop_every=40)
    assert r.bytes_in_flight == 0
    assert r.ack_eliciting_in_flight() == 0
    assert r.packets_acked + r.packets_lost == r.packets_sent
    assert r.packets_lost >= 3000 // 40
    assert r.rtt.min_rtt == pytest.approx(2 * ONE_WAY)
    assert r.controller.congestion_window >= 2 * MDS


@pytest.mark.parametrize("cc", ["newreno", "cubic"])
def test_loss_free_transfer_loses_nothing(cc: str) -> None:
    r = run(cc, packets=2000, drop_every=10**9)
    assert r.packets_lost == 0
    assert r.packets_acked == r.packets_sent == 2000

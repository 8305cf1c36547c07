"""A tiny deterministic path for controller unit tests (no recovery, no engine).

The sender sends whenever the controller's window and pacing rate allow; a
bottleneck of ``rate`` bytes/s serialises packets, then ``rtt`` of propagation
later each packet is acknowledged on its own.  Packets whose number is in
``drop`` never arrive and are reported lost when the third later packet is
acknowledged (RFC 9002 §6.1.1 packet threshold).  Everything the controller
receives is synthetic and explicit: SentInfo, AckedPacket, LostPacket,
RttSample and ``now``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from tquic.cc.base import AckedPacket, CongestionController, LostPacket, RttSample, SentInfo

MDS = 1200


class Pipe:
    def __init__(
        self,
        cc: CongestionController,
        rate: float,
        rtt: float,
        drop: Callable[[int], bool] | None = None,
        ce: Callable[[int], bool] | None = None,
    ) -> None:
        self.cc = cc
        self.rate = rate
        self.rtt = rtt
        self.drop = drop or (lambda pn: False)
        self.ce = ce or (lambda pn: False)
        self.now = 0.0
        self.next_pn = 0
        self.in_flight: dict[int, float] = {}  # pn -> time sent
        self.bytes_in_flight = 0
        self.busy_until = 0.0
        self.acks: list[tuple[float, int]] = []  # (ack time, pn)
        self.next_send = 0.0
        self.srtt = 0.0
        self.min_rtt = float("inf")
        self.delivered = 0
        self.lost: list[int] = []
        self.app_limited_until = float("inf")  # time after which the sender stops sending

    def _send_one(self) -> None:
        pn = self.next_pn
        self.next_pn += 1
        now = self.now
        self.in_flight[pn] = now
        self.bytes_in_flight += MDS
        self.cc.on_packet_sent(SentInfo(pn, MDS, now, self.bytes_in_flight, False), now)
        if not self.drop(pn):
            arrival = max(now, self.busy_until) + MDS / self.rate
            self.busy_until = arrival
            heapq.heappush(self.acks, (arrival + self.rtt, pn))

    def _ack(self, pn: int) -> None:
        now = self.now
        sent = self.in_flight.pop(pn, None)
        if sent is None:
            return
        self.bytes_in_flight -= MDS
        latest = now - sent
        self.min_rtt = min(self.min_rtt, latest)
        self.srtt = latest if self.srtt == 0 else 0.875 * self.srtt + 0.125 * latest
        # Packet-threshold loss: anything 3 below this one still in flight.
        lost = [p for p in self.in_flight if p <= pn - 3]
        if lost:
            for p in lost:
                self.bytes_in_flight -= MDS
                self.lost.append(p)
            self.cc.on_packets_lost(
                [LostPacket(p, MDS, self.in_flight.pop(p)) for p in lost], self.bytes_in_flight, now
            )
        self.delivered += MDS
        rtt = RttSample(latest, self.srtt, self.srtt / 2, self.min_rtt, True)
        self.cc.on_packets_acked(
            [AckedPacket(pn, MDS, sent)], rtt, self.bytes_in_flight, now, int(self.ce(pn))
        )

    def run_until(self, end: float) -> None:
        """Advance to ``end``, sending and acknowledging as the controller allows."""
        while True:
            cc = self.cc
            rate = cc.pacing_rate
            can_send = (
                self.now < self.app_limited_until
                and self.bytes_in_flight + MDS <= cc.congestion_window
            )
            send_at = max(self.now, self.next_send) if can_send else float("inf")
            ack_at = self.acks[0][0] if self.acks else float("inf")
            t = min(send_at, ack_at)
            if t > end:
                self.now = end
                return
            self.now = t
            if ack_at <= send_at:
                _, pn = heapq.heappop(self.acks)
                self._ack(pn)
            else:
                self._send_one()
                self.next_send = self.now + (MDS / rate if rate else 0.0)

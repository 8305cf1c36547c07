"""Copa (Arun & Balakrishnan, "Copa: Practical Delay-Based Congestion Control
for the Internet", NSDI 2018).

Copa steers towards the target rate λ_t = 1 / (δ · d_q), where d_q is the
queueing delay RTT_standing - RTT_min (§2.1).  RTT_standing is the smallest
RTT over the last srtt/2 (robust to ACK compression and jitter), RTT_min the
smallest over the last 10 s.  The current rate is λ = cwnd / RTT_standing.
On every ACK (§2.2): if λ ≤ λ_t, cwnd += v / (δ · cwnd), else
cwnd -= v / (δ · cwnd) (in packets per acknowledged packet).  The velocity v
starts at 1 and doubles every RTT once cwnd has moved in the same direction
for three RTTs; it resets to 1 when the direction changes.  Copa starts in
slow start, doubling cwnd every RTT until λ first exceeds λ_t, and paces at
2 · cwnd / RTT_standing.  Default δ = 0.5.

Competitive mode (§2.3, optional): when the queue has not nearly emptied
(d_q < 0.1 · (RTT_max - RTT_min)) within the last five RTTs, a buffer-filling
flow is present and 1/δ follows AIMD (+1 per RTT, halved on loss), δ ≤ 0.5.
Default mode ignores loss (the paper's design: loss is not a congestion
signal for Copa); persistent congestion still collapses the window.
"""

from __future__ import annotations

import math
from collections import deque

from tquic.cc.base import MINIMUM_WINDOW_PACKETS, AckedPacket, LostPacket, RttSample, SentInfo
from tquic.cc.window import MIN_MAX_DATAGRAM_SIZE, initial_window

DEFAULT_DELTA = 0.5
MIN_RTT_WINDOW = 10.0  # §2.1: RTT_min over 10 s
SAME_DIRECTION_ROUNDS = 3  # §2.2: v doubles after three RTTs in one direction
PACING_FACTOR = 2.0  # §2.2: pace at 2 cwnd / RTT_standing
MAX_VELOCITY = 1 << 16
COMPETITIVE_ROUNDS = 5  # §2.3: "in the last five RTTs"
NEARLY_EMPTY = 0.1  # §2.3: d_q < 0.1 (RTT_max - RTT_min)


class WindowedMin:
    """Min of (time, value) samples within a sliding time window (a monotonic deque)."""

    __slots__ = ("_q",)

    def __init__(self) -> None:
        self._q: deque[tuple[float, float]] = deque()

    def update(self, t: float, v: float, window: float) -> float:
        q = self._q
        while q and q[-1][1] >= v:
            q.pop()
        q.append((t, v))
        while len(q) > 1 and q[0][0] < t - window:
            q.popleft()
        return q[0][1]

    @property
    def value(self) -> float:
        return self._q[0][1] if self._q else math.inf


class Copa:
    """Copa with velocity, standing RTT and optional competitive mode."""

    __slots__ = (
        "_cwnd",
        "_direction",
        "_largest_sent",
        "_round_end_pn",
        "_round_start_cwnd",
        "_same_direction",
        "_srtt",
        "competitive",
        "competitive_mode",
        "default_delta",
        "delta",
        "max_datagram_size",
        "minimum_window",
        "rounds_since_empty",
        "rtt_max",
        "rtt_min",
        "rtt_standing",
        "slow_start",
        "velocity",
    )

    def __init__(
        self, max_datagram_size: int, *, delta: float = DEFAULT_DELTA, competitive: bool = False
    ) -> None:
        if max_datagram_size < MIN_MAX_DATAGRAM_SIZE:
            raise ValueError(
                f"max_datagram_size must be at least {MIN_MAX_DATAGRAM_SIZE} (RFC 9000 §14), "
                f"got {max_datagram_size!r}"
            )
        if not (0 < delta <= 1):
            raise ValueError(f"delta must be in (0, 1], got {delta!r}")
        self.max_datagram_size = max_datagram_size
        self.minimum_window = MINIMUM_WINDOW_PACKETS * max_datagram_size
        self._cwnd = float(initial_window(max_datagram_size))
        self.default_delta = delta
        self.delta = delta
        self.competitive = competitive
        self.competitive_mode = False
        self.rounds_since_empty = 0
        self.velocity = 1.0
        self._direction = 0
        self._same_direction = 0
        self.slow_start = True
        self.rtt_min = WindowedMin()
        self.rtt_standing = WindowedMin()
        self.rtt_max = 0.0
        self._srtt = 0.0
        self._largest_sent = -1
        self._round_end_pn = -1
        self._round_start_cwnd = self._cwnd

    @property
    def congestion_window(self) -> int:
        return int(self._cwnd)

    @property
    def pacing_rate(self) -> float | None:
        standing = self.rtt_standing.value
        if math.isinf(standing) or standing <= 0:
            return None
        return PACING_FACTOR * self._cwnd / standing

    def on_packet_sent(self, info: SentInfo, now: float) -> None:
        if info.packet_number > self._largest_sent:
            self._largest_sent = info.packet_number

    def queueing_delay(self) -> float:
        """d_q = RTT_standing - RTT_min (seconds)."""
        standing, low = self.rtt_standing.value, self.rtt_min.value
        if math.isinf(standing) or math.isinf(low):
            return 0.0
        return max(0.0, standing - low)

    def target_rate(self) -> float:
        """λ_t = 1 / (δ d_q) in bytes per second (inf when there is no queue)."""
        dq = self.queueing_delay()
        if dq <= 0:
            return math.inf
        return self.max_datagram_size / (self.delta * dq)

    def current_rate(self) -> float:
        """λ = cwnd / RTT_standing in bytes per second."""
        standing = self.rtt_standing.value
        if math.isinf(standing) or standing <= 0:
            return 0.0
        return self._cwnd / standing

    def on_packets_acked(
        self,
        acked: list[AckedPacket],
        rtt: RttSample,
        bytes_in_flight: int,
        now: float,
        ecn_ce_count: int = 0,
    ) -> None:
        if not acked:
            return
        self._srtt = rtt.smoothed_rtt
        if rtt.new_sample and rtt.latest_rtt > 0:
            sample = rtt.latest_rtt
            self.rtt_min.update(now, sample, MIN_RTT_WINDOW)
            self.rtt_standing.update(now, sample, max(rtt.smoothed_rtt / 2, 1e-6))
            self.rtt_max = max(self.rtt_max, sample)
        if math.isinf(self.rtt_standing.value):
            return
        mss = self.max_datagram_size
        acked_bytes = sum(p.sent_bytes for p in acked)
        below_target = self.current_rate() <= self.target_rate()
        if self.slow_start:
            if below_target:
                self._cwnd += acked_bytes  # doubles per RTT
            else:
                self.slow_start = False
        if not self.slow_start:
            cwnd_pkts = self._cwnd / mss
            change = self.velocity * (acked_bytes / mss) / (self.delta * cwnd_pkts) * mss
            self._cwnd += change if below_target else -change
            self._cwnd = max(self._cwnd, float(self.minimum_window))
        if acked[-1].packet_number > self._round_end_pn:
            self._end_round()

    def _end_round(self) -> None:
        # §2.2 velocity: compare cwnd with its value one window ago.
        if not self.slow_start:
            change = self._cwnd - self._round_start_cwnd
            direction = (change > 0) - (change < 0)
            if direction != 0 and direction == self._direction:
                self._same_direction += 1
                if self._same_direction >= SAME_DIRECTION_ROUNDS:
                    self.velocity = min(self.velocity * 2, float(MAX_VELOCITY))
            else:
                self._direction = direction
                self._same_direction = 0
                self.velocity = 1.0
        if self.competitive:
            self._update_mode()
        self._round_start_cwnd = self._cwnd
        self._round_end_pn = self._largest_sent

    def _update_mode(self) -> None:
        # §2.3: has the queue nearly emptied within the last five RTTs?
        spread = self.rtt_max - self.rtt_min.value
        if spread <= 0 or self.queueing_delay() < NEARLY_EMPTY * spread:
            self.rounds_since_empty = 0
        else:
            self.rounds_since_empty += 1
        if self.rounds_since_empty >= COMPETITIVE_ROUNDS:
            if not self.competitive_mode:
                self.competitive_mode = True
            # AIMD on 1/δ: +1 per RTT.
            self.delta = max(1.0 / (1.0 / self.delta + 1.0), 1e-3)
        elif self.competitive_mode:
            self.competitive_mode = False
            self.delta = self.default_delta

    def on_packets_lost(self, lost: list[LostPacket], bytes_in_flight: int, now: float) -> None:
        if lost and self.competitive_mode:
            # §2.3: halve 1/δ on loss, never more conservative than the default.
            self.delta = min(2.0 * self.delta, self.default_delta)

    def on_congestion_event_ecn(self, time_sent: float, now: float) -> None:
        return  # Copa reacts to delay, not marks

    def on_persistent_congestion(self, now: float) -> None:
        self._cwnd = float(self.minimum_window)
        self.velocity = 1.0
        self._same_direction = 0

    def on_packets_discarded(self, sent_bytes: int) -> None:
        return

    def __repr__(self) -> str:
        return (
            f"Copa(cwnd={self.congestion_window}, v={self.velocity:g}, delta={self.delta:g}, "
            f"dq={self.queueing_delay():.4f}, slow_start={self.slow_start})"
        )


def create_copa(max_datagram_size: int) -> Copa:
    return Copa(max_datagram_size)

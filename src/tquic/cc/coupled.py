"""Coupled congestion control for multipath: LIA, OLIA and BALIA.

draft-ietf-quic-multipath §"Congestion Control": paths of one connection may share
a bottleneck, so uncoupled per-path controllers would take N times a fair share;
"Multipath TCP uses the linked increases algorithm (LIA) ... [RFC 6356].  This
scheme can immediately be adapted to Multipath QUIC.  Other coupled congestion
control schemes have been proposed ... such as OLIA."

Each path still owns its own controller (its window, recovery period, slow
start; RFC 9002 §7 via :class:`~tquic.cc.window.WindowController`).  What is
coupled is the congestion-avoidance increase (and, for BALIA, the decrease):
every controller of a connection joins one :class:`CoupledGroup` and reads the
windows and smoothed RTTs of its siblings there.  Slow start is not coupled
(RFC 6356 §3 changes only the congestion-avoidance increase).  Windows are in
bytes; the papers' per-packet formulas are converted by counting an ACK of
``b`` bytes as ``b / MSS`` packet ACKs and multiplying window changes by MSS.

Members without an RTT sample yet (a path that has carried nothing) are left
out of the sums: they have no rate to couple with.
"""

from __future__ import annotations

from collections.abc import Iterator

from tquic.cc.base import AckedPacket, RttSample
from tquic.cc.window import WindowController

# RFC 9002 §7.3.2 / RFC 5681: halve on a congestion event (LIA and OLIA keep the
# uncoupled decrease; RFC 6356 §3 "decrease ... as in TCP").
LOSS_REDUCTION_FACTOR = 0.5
# BALIA (Peng et al. 2016, §VI): the decrease factor is min(alpha_r, 1.5) / 2.
BALIA_MAX_ALPHA_DECREASE = 1.5


class CoupledGroup:
    """The controllers of one connection's paths (one per path)."""

    __slots__ = ("_members",)

    def __init__(self) -> None:
        self._members: list[CoupledController] = []

    def join(self, member: CoupledController) -> None:
        if member not in self._members:
            self._members.append(member)

    def leave(self, member: CoupledController) -> None:
        if member in self._members:
            self._members.remove(member)

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[CoupledController]:
        return iter(self._members)

    def active(self) -> list[CoupledController]:
        """Members with an RTT sample: the ones the coupling formulas sum over."""
        return [m for m in self._members if m.srtt > 0]


class CoupledController(WindowController):
    """A window controller that joined a :class:`CoupledGroup`."""

    __slots__ = ("group", "srtt")

    def __init__(self, max_datagram_size: int, group: CoupledGroup | None = None) -> None:
        super().__init__(max_datagram_size)
        self.srtt = 0.0  # smoothed RTT of this path, 0 until the first ACK brings one
        self.group = group if group is not None else CoupledGroup()
        self.group.join(self)

    @property
    def cwnd(self) -> float:
        """The window as a float (fractional increases accumulate)."""
        return self._cwnd

    def detach(self) -> None:
        """Leave the group (the path was abandoned): siblings stop counting this window."""
        self.group.leave(self)

    def on_packets_acked(self, acked: list[AckedPacket], rtt: RttSample, bytes_in_flight: int,
                         now: float, ecn_ce_count: int = 0) -> None:
        if rtt.smoothed_rtt > 0:
            self.srtt = rtt.smoothed_rtt
        super().on_packets_acked(acked, rtt, bytes_in_flight, now, ecn_ce_count)

    def _congestion_avoidance(self, acked_bytes: int, rtt: RttSample, now: float) -> None:
        if self.srtt <= 0:
            self.srtt = rtt.smoothed_rtt
        self._cwnd = max(float(self.minimum_window), self._cwnd + self.increase(acked_bytes))

    def increase(self, acked_bytes: int) -> float:
        """Bytes to add to this path's window for an ACK of ``acked_bytes`` (may be < 0)."""
        raise NotImplementedError

    def _reduce(self, now: float) -> None:
        self.ssthresh = int(self._cwnd * LOSS_REDUCTION_FACTOR)
        self._cwnd = float(max(self.ssthresh, self.minimum_window))


class Lia(CoupledController):
    """Linked Increases (RFC 6356 §3).

    For each ACK on path i: cwnd_i += min(alpha * bytes_acked * MSS_i / cwnd_total,
    bytes_acked * MSS_i / cwnd_i), with
    alpha = cwnd_total * max_i(cwnd_i / rtt_i^2) / (sum_i cwnd_i / rtt_i)^2 (equation 2).
    The min() caps the increase at what a single-path TCP would get (goal 2,
    "do no harm").  Decrease: halve, as uncoupled TCP.
    """

    __slots__ = ()

    def alpha(self) -> float:
        """RFC 6356 §3 equation (2), over the group's members with an RTT."""
        members = self.group.active()
        if not members:
            return 1.0
        total = sum(m.cwnd for m in members)
        best = max(m.cwnd / (m.srtt * m.srtt) for m in members)
        rate_sum = sum(m.cwnd / m.srtt for m in members)
        return total * best / (rate_sum * rate_sum)

    def increase(self, acked_bytes: int) -> float:
        members = self.group.active()
        mss = self.max_datagram_size
        uncoupled = acked_bytes * mss / self._cwnd
        if len(members) <= 1:
            return uncoupled
        total = sum(m.cwnd for m in members)
        return min(self.alpha() * acked_bytes * mss / total, uncoupled)


class Olia(CoupledController):
    """Opportunistic Linked Increases (Khalili, Gast, Popovic, Le Boudec, CoNEXT 2012;
    draft-khalili-mptcp-congestion-control-05 §3).

    For each ACK on path r (per packet, windows w in packets):
        w_r += (w_r / rtt_r^2) / (sum_p w_p / rtt_p)^2 + alpha_r / w_r
    where, with M the paths of largest window, B the paths of largest
    l_p / rtt_p^2 (l_p: bytes acknowledged between the last two losses on p, or
    since the last loss if more; an estimate of 1 / loss probability), and n the
    number of paths:
        alpha_r =  1 / (n * |B \\ M|)  if r in B \\ M
        alpha_r = -1 / (n * |M|)      if r in M and B \\ M is not empty
        alpha_r =  0                  otherwise.
    Decrease: halve.  In bytes the increase is bytes_acked * MSS * (the bracket with
    windows in bytes).
    """

    __slots__ = ("_acked_at_loss", "_acked_at_previous_loss", "_acked_total")

    def __init__(self, max_datagram_size: int, group: CoupledGroup | None = None) -> None:
        super().__init__(max_datagram_size, group)
        self._acked_total = 0
        self._acked_at_loss = 0
        self._acked_at_previous_loss = 0

    @property
    def inter_loss_bytes(self) -> int:
        """l_r = max(bytes between the last two losses, bytes since the last loss)."""
        return max(self._acked_total - self._acked_at_loss,
                   self._acked_at_loss - self._acked_at_previous_loss)

    def on_packets_acked(self, acked: list[AckedPacket], rtt: RttSample, bytes_in_flight: int,
                         now: float, ecn_ce_count: int = 0) -> None:
        for packet in acked:
            self._acked_total += packet.sent_bytes
        super().on_packets_acked(acked, rtt, bytes_in_flight, now, ecn_ce_count)

    def _reduce(self, now: float) -> None:
        self._acked_at_previous_loss = self._acked_at_loss
        self._acked_at_loss = self._acked_total
        super()._reduce(now)

    def alpha(self) -> float:
        members = self.group.active()
        if self not in members:
            return 0.0
        n = len(members)
        max_cwnd = max(m.cwnd for m in members)
        in_m = [m for m in members if m.cwnd == max_cwnd]
        quality = [_olia_quality(m) for m in members]
        best_q = max(quality)
        b_not_m = [m for m, q in zip(members, quality, strict=True)
                   if q == best_q and m.cwnd != max_cwnd]
        if not b_not_m:
            return 0.0
        if self in b_not_m:
            return 1.0 / (n * len(b_not_m))
        if self.cwnd == max_cwnd:
            return -1.0 / (n * len(in_m))
        return 0.0

    def increase(self, acked_bytes: int) -> float:
        members = self.group.active()
        mss = self.max_datagram_size
        if len(members) <= 1 or self not in members:
            return acked_bytes * mss / self._cwnd
        rate_sum = sum(m.cwnd / m.srtt for m in members)
        coupled = (self._cwnd / (self.srtt * self.srtt)) / (rate_sum * rate_sum)
        return acked_bytes * mss * (coupled + self.alpha() / self._cwnd)


def _olia_quality(member: CoupledController) -> float:
    inter_loss = member.inter_loss_bytes if isinstance(member, Olia) else 0
    return inter_loss / (member.srtt * member.srtt)


class Balia(CoupledController):
    """Balanced Linked Adaptation (Peng, Walid, Hwang, Low, IEEE/ACM ToN 2016, §VI).

    With x_r = w_r / rtt_r and alpha_r = max_k x_k / x_r:
        each ACK on r:  w_r += x_r / (rtt_r * (sum_k x_k)^2) * (1 + alpha_r) / 2
                               * (4 + alpha_r) / 5
        each loss on r: w_r -= w_r / 2 * min(alpha_r, 1.5)
    (per packet; in bytes the increase is bytes_acked * MSS * the same expression
    with windows in bytes).  With one path alpha = 1 and both reduce to Reno.
    """

    __slots__ = ()

    def alpha(self) -> float:
        members = self.group.active()
        if len(members) <= 1 or self not in members:
            return 1.0
        mine = self._cwnd / self.srtt
        return max(m.cwnd / m.srtt for m in members) / mine

    def increase(self, acked_bytes: int) -> float:
        members = self.group.active()
        mss = self.max_datagram_size
        if len(members) <= 1 or self not in members:
            return acked_bytes * mss / self._cwnd
        x_r = self._cwnd / self.srtt
        x_sum = sum(m.cwnd / m.srtt for m in members)
        a = self.alpha()
        return acked_bytes * mss * x_r / (self.srtt * x_sum * x_sum) * (1 + a) / 2 * (4 + a) / 5

    def _reduce(self, now: float) -> None:
        factor = min(self.alpha(), BALIA_MAX_ALPHA_DECREASE) / 2
        reduced = self._cwnd * (1.0 - factor)
        self.ssthresh = int(reduced)
        self._cwnd = float(max(int(reduced), self.minimum_window))


COUPLED_CONTROLLERS: dict[str, type[CoupledController]] = {
    "lia": Lia,
    "olia": Olia,
    "balia": Balia,
}

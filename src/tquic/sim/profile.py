"""What a simulated link does to datagrams, as immutable values.

A :class:`LinkProfile` describes ONE direction of a link; a link is a pair of
them (up = client→server, down = server→client) so asymmetric access links
(ADSL, LTE, Starlink) are just two different profiles.  Every field is
validated when the profile is built, with an error naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tquic.paths.network_path import Address

ECN_MODES = ("none", "classic", "l4s", "bleach")
"""LinkProfile.ecn choices (see LinkProfile)."""


class ProfileError(ValueError):
    """A profile field is out of range; the message names the field."""


def _check(cond: bool, name: str, why: str) -> None:
    if not cond:
        raise ProfileError(f"{name}: {why}")


def _prob(value: float, name: str) -> None:
    _check(0.0 <= value <= 1.0 and not math.isnan(value), name, f"must be in [0, 1], got {value}")


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain evaluated once per datagram.

    ``p`` is the probability of moving good→bad, ``r`` bad→good; in each state a
    datagram is lost with ``loss_bad`` / ``loss_good``.  The stationary share of
    time in the bad state is p / (p + r) and the mean burst length 1 / r.
    """

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0

    def __post_init__(self) -> None:
        _prob(self.p, "gilbert_elliott.p")
        _prob(self.r, "gilbert_elliott.r")
        _check(self.r > 0.0, "gilbert_elliott.r", "must be > 0 or the bad state never ends")
        _prob(self.loss_bad, "gilbert_elliott.loss_bad")
        _prob(self.loss_good, "gilbert_elliott.loss_good")

    @property
    def mean_loss(self) -> float:
        """Long-run loss rate: the stationary mix of the two states' loss rates."""
        bad = self.p / (self.p + self.r)
        return bad * self.loss_bad + (1.0 - bad) * self.loss_good


@dataclass(frozen=True, slots=True)
class Outage:
    """A blackhole: every datagram entering the link in [start, end) is dropped.

    ``end = math.inf`` is a link that goes down for good at ``start``.
    """

    start: float
    end: float = math.inf

    def __post_init__(self) -> None:
        _check(self.start >= 0.0, "outage.start", f"must be >= 0, got {self.start}")
        _check(self.end > self.start, "outage.end", f"must be > start ({self.start}), got {self.end}")


@dataclass(frozen=True, slots=True)
class Rebind:
    """At ``at`` the NAT in front of the client maps it to a new external address.

    With neither ``host`` nor ``port`` given, only the port changes, to one drawn
    from the link's random generator (a port rebinding).  Replies the server sends
    to the old address after ``at`` are dropped (the old NAT binding is gone).
    """

    at: float
    host: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        _check(self.at >= 0.0, "rebind.at", f"must be >= 0, got {self.at}")
        if self.port is not None:
            _check(0 < self.port < 65536, "rebind.port", f"must be in 1..65535, got {self.port}")


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """One direction of a link.

    - ``rate_bps``: serialisation rate in bit/s (``None`` = infinitely fast); a
      datagram of n bytes occupies the link for (n + overhead_bytes)·8 / rate.
    - ``delay``: one-way propagation delay in seconds.
    - ``jitter``: each datagram's delay is drawn uniformly in [delay - jitter,
      delay + jitter] (floored at 0); datagrams still leave in order unless
      ``jitter_reorders`` is set.
    - ``loss``: independent random loss probability; ``bursty``: Gilbert-Elliott
      loss applied in addition.
    - ``reorder``: probability that a datagram is held back by ``reorder_delay``
      extra seconds (and so overtaken by later ones).
    - ``corrupt``: probability that a datagram arrives with ``corrupt_bits`` bits
      flipped (in a copy; the sender's bytes are never touched).
    - ``queue_packets`` / ``queue_bytes``: the bottleneck buffer (datagrams
      waiting or being serialised); a datagram that does not fit is tail-dropped.
    - ``outages``: blackhole windows.
    - ``overhead_bytes``: per-datagram bytes the rate also carries (IPv4 + UDP = 28).
    - ``ecn``: what the bottleneck does with the ECN field (RFC 3168, RFC 9331):
      ``"none"`` carries it untouched (the default: no marking); ``"classic"``
      CE-marks an ECT(0) or ECT(1) datagram instead of queueing it beyond
      ``ecn_threshold`` seconds of queue delay (a step AQM, RFC 3168 §5: mark
      where it would otherwise drop early); ``"l4s"`` marks ECT(1) beyond the
      shallow ``l4s_threshold`` (RFC 9332's step for the L4S queue) and ECT(0)
      beyond ``ecn_threshold`` as classic; ``"bleach"`` clears the field (a
      faulty middlebox: ECN validation must fail).  A full queue still drops.
    """

    rate_bps: float | None = None
    delay: float = 0.0
    jitter: float = 0.0
    jitter_reorders: bool = False
    loss: float = 0.0
    bursty: GilbertElliott | None = None
    reorder: float = 0.0
    reorder_delay: float = 0.0
    corrupt: float = 0.0
    corrupt_bits: int = 1
    queue_packets: int | None = None
    queue_bytes: int | None = None
    outages: tuple[Outage, ...] = field(default=())
    overhead_bytes: int = 0
    ecn: str = "none"
    ecn_threshold: float = 0.005
    l4s_threshold: float = 0.001

    def __post_init__(self) -> None:
        if self.rate_bps is not None:
            _check(self.rate_bps > 0 and math.isfinite(self.rate_bps), "rate_bps",
                   f"must be a positive finite bit rate or None, got {self.rate_bps}")
        _check(self.delay >= 0.0 and math.isfinite(self.delay), "delay",
               f"must be >= 0, got {self.delay}")
        _check(self.jitter >= 0.0 and math.isfinite(self.jitter), "jitter",
               f"must be >= 0, got {self.jitter}")
        _prob(self.loss, "loss")
        _prob(self.reorder, "reorder")
        _check(self.reorder_delay >= 0.0, "reorder_delay", f"must be >= 0, got {self.reorder_delay}")
        _prob(self.corrupt, "corrupt")
        _check(self.corrupt_bits >= 1, "corrupt_bits", f"must be >= 1, got {self.corrupt_bits}")
        if self.queue_packets is not None:
            _check(self.queue_packets >= 1, "queue_packets", f"must be >= 1, got {self.queue_packets}")
        if self.queue_bytes is not None:
            _check(self.queue_bytes >= 1, "queue_bytes", f"must be >= 1, got {self.queue_bytes}")
        _check(self.overhead_bytes >= 0, "overhead_bytes", f"must be >= 0, got {self.overhead_bytes}")
        for o in self.outages:
            _check(isinstance(o, Outage), "outages", f"must hold Outage values, got {o!r}")
        _check(self.ecn in ECN_MODES, "ecn", f"must be one of {ECN_MODES}, got {self.ecn!r}")
        _check(self.ecn_threshold >= 0.0 and math.isfinite(self.ecn_threshold),
               "ecn_threshold", f"must be >= 0 seconds, got {self.ecn_threshold}")
        _check(self.l4s_threshold >= 0.0 and math.isfinite(self.l4s_threshold),
               "l4s_threshold", f"must be >= 0 seconds, got {self.l4s_threshold}")
        _check(self.ecn in ("none", "bleach") or self.rate_bps is not None, "ecn",
               "marking needs a queue, hence a rate_bps")

    def down_during(self, now: float) -> bool:
        """True when ``now`` falls inside an outage window."""
        return any(o.start <= now < o.end for o in self.outages)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A link between the two endpoints: its two directions and its addresses.

    ``client`` is the client's local address on this link (how the client's
    engine names the path), ``server`` the server's.  Several specs between the
    same two endpoints are several links (multipath); ``share_with`` makes this
    link a second route over the pipes of an earlier link (same queue and rate:
    cross traffic, or a second address on the same access network).
    """

    up: LinkProfile
    down: LinkProfile
    client: Address
    server: Address
    rebinds: tuple[Rebind, ...] = ()
    share_with: int | None = None

    def __post_init__(self) -> None:
        times = [r.at for r in self.rebinds]
        _check(times == sorted(times), "rebinds", "must be in time order")
        if self.share_with is not None:
            _check(self.share_with >= 0, "share_with", "must be the index of an earlier link")

    @classmethod
    def symmetric(
        cls,
        profile: LinkProfile,
        client: Address,
        server: Address,
        rebinds: tuple[Rebind, ...] = (),
        share_with: int | None = None,
    ) -> LinkSpec:
        """Both directions with the same profile."""
        return cls(profile, profile, client, server, rebinds, share_with)


# The QUIC interop runner's default network (ns-3 "simple-p2p": 10 Mbit/s,
# 15 ms one way, a 25-packet drop-tail queue).  IPv4 + UDP headers count
# against the rate as they do on the real link.
INTEROP_RATE_BPS = 10_000_000.0
INTEROP_PROFILE = LinkProfile(
    rate_bps=INTEROP_RATE_BPS, delay=0.015, queue_packets=25, overhead_bytes=28
)

"""Values of ``tquic demo``: its links, options, per-path samples and the summary.

Frozen, validated when built (a bad option names itself), and turned into plain
data for ``--json``.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_LINKS",
    "DemoError",
    "DemoLink",
    "DemoOptions",
    "DemoSummary",
    "PathSample",
    "parse_link",
]

PACKET = 1500  # bytes per queued datagram when sizing a link's queue to one BDP
MIN_QUEUE = 32  # packets: short links still absorb a burst of the pacer


class DemoError(ValueError):
    """A demo option is wrong, or the demo cannot run here; the message says why."""


@dataclass(frozen=True, slots=True)
class DemoLink:
    """One emulated access link: the client's source address on loopback selects it."""

    host: str
    rate_bps: float
    rtt: float
    loss: float = 0.0

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.host)
        except ValueError:
            raise DemoError(f"link host {self.host!r}: must be an IPv4 address such as "
                            "127.0.0.2") from None
        if not (self.rate_bps > 0 and math.isfinite(self.rate_bps)):
            raise DemoError(f"link {self.host}: rate must be > 0, got {self.rate_bps}")
        if not 0 <= self.rtt <= 5:
            raise DemoError(f"link {self.host}: RTT must be within [0, 5] s, got {self.rtt}")
        if not 0 <= self.loss < 1:
            raise DemoError(f"link {self.host}: loss must be within [0, 1), got {self.loss}")

    @property
    def label(self) -> str:
        text = f"{self.rate_bps / 1e6:g} Mbit/s {self.rtt * 1000:g} ms"
        return text + (f" {self.loss * 100:g}% loss" if self.loss else "")

    @property
    def queue_packets(self) -> int:
        """A drop-tail queue of one bandwidth-delay product (at least MIN_QUEUE packets)."""
        return max(MIN_QUEUE, math.ceil(self.rate_bps * self.rtt / 8 / PACKET))

    def netem_profile(self, down_at: float | None = None) -> str:
        """The ``tquic netem`` profile: half the RTT each way; down for good at ``down_at``."""
        text = (f"rate={self.rate_bps / 1e6:g}mbit,delay={self.rtt * 500:g}ms,"
                f"queue={self.queue_packets},overhead=28")
        if self.loss:
            text += f",loss={self.loss * 100:g}%"
        if down_at is not None:
            text += f",outage={down_at:g}s-"
        return text


DEFAULT_LINKS = (
    DemoLink("127.0.0.2", 40e6, 0.020),
    DemoLink("127.0.0.3", 20e6, 0.050),
    DemoLink("127.0.0.4", 10e6, 0.100, loss=0.005),
)


def parse_link(text: str) -> DemoLink:
    """``HOST=RATE_MBIT/RTT_MS[/LOSS_PERCENT]``, e.g. ``127.0.0.5=15/80/1``."""
    host, sep, rest = text.partition("=")
    parts = rest.split("/")
    if not sep or len(parts) not in (2, 3):
        raise DemoError(f"--link {text!r}: write HOST=MBIT/RTT_MS[/LOSS%], "
                        "e.g. 127.0.0.5=15/80/1")
    try:
        rate, rtt = float(parts[0]) * 1e6, float(parts[1]) / 1000
        loss = float(parts[2]) / 100 if len(parts) == 3 else 0.0
    except ValueError:
        raise DemoError(f"--link {text!r}: rate, RTT and loss must be numbers") from None
    return DemoLink(host.strip(), rate, rtt, loss)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``tquic demo`` runs.

    - ``seconds``: how long the download runs at most; ``size``: bytes to fetch
      (0: as many as fit in ``seconds``).
    - ``down_link`` goes down for good ``down_at`` seconds after the start
      (None: half of ``seconds``; a negative ``down_link``: no link goes down).
    - ``multipath``: False runs one path over the first link only.
    """

    links: tuple[DemoLink, ...] = DEFAULT_LINKS
    seconds: float = 10.0
    size: int = 0
    down_link: int = 0
    down_at: float | None = None
    scheduler: str = "minrtt"
    congestion_control: str = "cubic"
    multipath: bool = True
    interval: float = 0.5
    seed: int = 1

    def __post_init__(self) -> None:
        if not self.links:
            raise DemoError("links: at least one link is needed")
        hosts = [link.host for link in self.links]
        if len(set(hosts)) != len(hosts):
            raise DemoError(f"links: each link needs its own address, got {hosts}")
        if not 0.5 <= self.seconds <= 3600:
            raise DemoError(f"--seconds: must be within [0.5, 3600], got {self.seconds}")
        if self.size < 0:
            raise DemoError(f"--size: must be >= 0 bytes, got {self.size}")
        if self.down_link >= len(self.links):
            raise DemoError(f"--down-link: must be below {len(self.links)} (the number of "
                            f"links) or negative for none, got {self.down_link}")
        if self.down_at is not None and not self.down_at > 0:
            raise DemoError(f"--down-at: must be > 0 seconds, got {self.down_at}")
        if not 0.05 <= self.interval <= 60:
            raise DemoError(f"--interval: must be within [0.05, 60] s, got {self.interval}")

    @property
    def down_time(self) -> float | None:
        """Seconds after the start at which ``down_link`` dies, or None."""
        if self.down_link < 0 or (not self.multipath and self.down_link != 0):
            return None
        return self.down_at if self.down_at is not None else self.seconds / 2

    @property
    def active_links(self) -> tuple[DemoLink, ...]:
        return self.links if self.multipath else self.links[:1]


@dataclass(frozen=True, slots=True)
class PathSample:
    """One path of the bonded connection at one instant (one row of the live table)."""

    link: int  # index into the options' links
    host: str
    path_id: int
    state: str  # validating, validated, failed, abandoned (or "down" from netem)
    rtt_ms: float | None  # the sender's smoothed RTT
    rate_bps: float  # application-level bytes received on this path per second, recently
    share: float  # this path's part of the recent receive rate (0..1)
    bytes_received: int
    packets_lost: int  # the sender's count (server side)
    cwnd: int


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo did, for the final table and ``--json``."""

    multipath: bool
    multipath_note: str  # why it ran single-path, when it did
    scheduler: str
    congestion_control: str
    seconds: float  # how long the download ran
    bytes_received: int
    goodput_bps: float
    intact: bool  # every byte equal to what the server sent
    completed: bool  # --size given and fully received (always False for a timed run)
    down_link: int | None
    down_at: float | None
    max_stall: float  # longest gap between two reads of the download (s)
    stall_after_down: float | None  # longest gap in the 3 s after the link went down
    paths: tuple[PathSample, ...]
    events: tuple[str, ...]
    error: str | None = None
    links: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

"""The result of one simulated run: a frozen value, a table, and a dict for JSON.

Equality ignores the wall-clock time, so "same seed, same report" is a plain
``==`` between two runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from tquic.sim.link import LinkStats

if TYPE_CHECKING:
    from tquic.sim.runner import Runner


@dataclass(frozen=True, slots=True)
class Stall:
    """A gap in in-order delivery to the application longer than the threshold."""

    start: float  # time of the last delivery before the gap
    duration: float


@dataclass(frozen=True, slots=True)
class FlowStats:
    name: str
    completed: bool
    completion_time: float | None  # seconds from the flow's start to its finish
    bytes_delivered: int
    goodput_bps: float | None
    failure: str | None


@dataclass(frozen=True, slots=True)
class Report:
    """What a run did; the figures are those of the first (primary) flow."""

    name: str
    seed: int
    completed: bool
    failure: str | None
    completion_time: float | None
    sim_time: float
    bytes_delivered: int
    goodput_bps: float | None
    goodput_ratio: float | None  # goodput / rate of the links in the data's direction
    stalls: tuple[Stall, ...]
    stall_threshold: float
    handshakes: int
    versions: tuple[int, ...]
    links: tuple[LinkStats, ...]
    flows: tuple[FlowStats, ...]
    unroutable: int
    timer_spins: int  # timers re-armed for the instant they had just run at (see runner)
    events: int
    qlog_files: tuple[str, ...] = ()
    wall_time: float = field(default=0.0, compare=False)

    @property
    def max_stall(self) -> float:
        return max((s.duration for s in self.stalls), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings) for ``json.dumps``."""
        return asdict(self)

    def table(self) -> str:
        """A human-readable summary."""
        def num(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        lines = [
            f"scenario {self.name or '-'}  seed {self.seed}  "
            f"{'completed' if self.completed else 'NOT completed'}"
            + (f"  failure: {self.failure}" if self.failure else ""),
            f"  completion {num(self.completion_time, '.3f')} s  sim time {self.sim_time:.3f} s  "
            f"wall {self.wall_time:.3f} s  events {self.events}  timer spins {self.timer_spins}",
            f"  delivered {self.bytes_delivered} B  goodput "
            f"{num(None if self.goodput_bps is None else self.goodput_bps / 1e6, '.3f')} Mbit/s  "
            f"ratio {num(self.goodput_ratio, '.3f')}",
            f"  handshakes {self.handshakes}  versions "
            + (", ".join(f"0x{v:08x}" for v in self.versions) or "-"),
            f"  stalls > {self.stall_threshold * 1000:.0f} ms: {len(self.stalls)}"
            f" (max {self.max_stall * 1000:.1f} ms)",
        ]
        # ECN columns only when a link marked or bleached something (LinkProfile.ecn).
        ecn = any(ps.ce_marked or ps.bleached for ls in self.links for ps in (ls.up, ls.down))
        header = "  link        dir   offered  delivered  loss  queue  outage  corrupt  nat"
        lines.append(header + ("     CE  bleach" if ecn else ""))
        for ls in self.links:
            for direction, ps in (("up", ls.up), ("down", ls.down)):
                d = dict(ps.dropped)
                lines.append(
                    f"  {ls.name:<11} {direction:<4} {ps.offered:>8} {ps.delivered:>10} "
                    f"{d['loss']:>5} {d['queue']:>6} {d['outage']:>7} {d['corruption']:>8} "
                    f"{d['nat']:>4}" + (f" {ps.ce_marked:>6} {ps.bleached:>7}" if ecn else "")
                )
        if len(self.flows) > 1:
            for fs in self.flows:
                g = "-" if fs.goodput_bps is None else f"{fs.goodput_bps / 1e6:.3f} Mbit/s"
                lines.append(f"  flow {fs.name}: {fs.bytes_delivered} B, {g}")
        return "\n".join(lines)


def find_stalls(times: list[float], threshold: float) -> tuple[Stall, ...]:
    """Gaps longer than ``threshold`` between consecutive deliveries."""
    return tuple(
        Stall(a, b - a) for a, b in pairwise(times) if b - a > threshold
    )


def build_report(runner: Runner, wall_time: float) -> Report:
    primary = [f for f in runner.flows if f.primary] or runner.flows
    flow = primary[0]
    fs = flow.stats()
    ratio = None
    if fs.goodput_bps is not None:
        pipes = {
            id(p): p
            for p in (
                (link.down if flow.workload.direction == "down" else link.up)
                for link in flow.links
            )
        }
        rates = [p.profile.rate_bps for p in pipes.values()]
        if rates and all(r is not None for r in rates):
            ratio = fs.goodput_bps / sum(r for r in rates if r is not None)
    failures = [f.failure for f in primary if f.failure is not None]
    versions = sorted({v for _, v in flow.handshakes if v is not None})
    return Report(
        name=runner.name,
        seed=runner.seed,
        completed=all(f.done_at is not None for f in primary),
        failure="; ".join(failures) or None,
        completion_time=fs.completion_time,
        sim_time=runner.loop.now,
        bytes_delivered=fs.bytes_delivered,
        goodput_bps=fs.goodput_bps,
        goodput_ratio=ratio,
        stalls=find_stalls(flow.delivery_times, runner.stall_threshold),
        stall_threshold=runner.stall_threshold,
        handshakes=len(flow.handshakes),
        versions=tuple(versions),
        links=tuple(link.stats() for link in runner.links),
        flows=tuple(f.stats() for f in runner.flows),
        unroutable=sum(f.unroutable for f in runner.flows),
        timer_spins=sum(
            d.timer_spins for f in runner.flows for d in (f.client_driver, f.server_driver)
        ),
        events=runner.loop.events_processed,
        qlog_files=tuple(runner.qlog_files),
        wall_time=wall_time,
    )


def summary_table(rows: list[tuple[str, str, Report | None, float]]) -> str:
    """One line per case: (case, result, report or None, wall seconds)."""
    out = [f"{'case':<22} {'result':<8} {'sim s':>8} {'wall s':>8} {'goodput':>8}"]
    for case, result, report, wall in rows:
        sim = "-" if report is None else f"{report.sim_time:.2f}"
        ratio = (
            "-" if report is None or report.goodput_ratio is None
            else f"{report.goodput_ratio:.3f}"
        )
        out.append(f"{case:<22} {result:<8} {sim:>8} {wall:>8.2f} {ratio:>8}")
    return "\n".join(out)

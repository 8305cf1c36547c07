"""A scenario: the network of a run, as a value.

A :class:`Scenario` names the links (their profiles, addresses and NAT
rebindings), the seed, how long the run may last and what counts as a stall.
``build()`` turns it into a :class:`~tquic.sim.runner.Runner` ready for flows;
``run()`` is the one-flow shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tquic.paths.network_path import Address
from tquic.sim.profile import INTEROP_PROFILE, LinkProfile, LinkSpec, Outage, Rebind
from tquic.sim.protocols import Endpoint, Workload
from tquic.sim.report import Report
from tquic.sim.runner import Runner

CLIENT_ADDR: Address = ("10.0.0.1", 50000)
SERVER_ADDR: Address = ("10.0.1.1", 443)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    links: tuple[LinkSpec, ...]
    seed: int = 1
    max_time: float = 60.0
    stall_threshold: float = 0.1

    def __post_init__(self) -> None:
        if not self.links:
            raise ValueError("links: a scenario needs at least one link")
        if self.max_time <= 0:
            raise ValueError(f"max_time: must be > 0, got {self.max_time}")
        if self.stall_threshold <= 0:
            raise ValueError(f"stall_threshold: must be > 0, got {self.stall_threshold}")

    def with_seed(self, seed: int) -> Scenario:
        return replace(self, seed=seed)

    def build(self) -> Runner:
        runner = Runner(
            seed=self.seed, name=self.name, max_time=self.max_time,
            stall_threshold=self.stall_threshold,
        )
        for spec in self.links:
            runner.add_link(spec)
        return runner

    def run(self, client: Endpoint, server: Endpoint, workload: Workload) -> Report:
        runner = self.build()
        runner.add_flow(client, server, workload)
        return runner.run()


def single_link(
    name: str,
    profile: LinkProfile = INTEROP_PROFILE,
    *,
    down: LinkProfile | None = None,
    rebinds: tuple[Rebind, ...] = (),
    seed: int = 1,
    max_time: float = 60.0,
    stall_threshold: float = 0.1,
    client: Address = CLIENT_ADDR,
    server: Address = SERVER_ADDR,
) -> Scenario:
    """One link (``profile`` up, ``down`` or the same down) between the endpoints."""
    spec = LinkSpec(profile, profile if down is None else down, client, server, rebinds)
    return Scenario(name, (spec,), seed, max_time, stall_threshold)


def blackhole_outages(on: float, off: float, until: float, first: float | None = None) -> tuple[
    Outage, ...
]:
    """Periodic outages: ``on`` seconds up, then ``off`` seconds down, until ``until``."""
    t = on if first is None else first
    out = []
    while t < until:
        out.append(Outage(t, t + off))
        t += off + on
    return tuple(out)

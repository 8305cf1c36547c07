"""Deterministic network simulator: virtual clock, links, scenario runner, reports.

    from tquic.sim import LinkProfile, single_link
    report = single_link("demo", LinkProfile(rate_bps=10e6, delay=0.015)).run(
        client, server, workload)
    print(report.table())
"""

from tquic.sim.clock import EventLoop, SimulationError
from tquic.sim.link import DROP_CAUSES, Link, LinkStats, Pipe, PipeStats
from tquic.sim.profile import (
    INTEROP_PROFILE,
    INTEROP_RATE_BPS,
    GilbertElliott,
    LinkProfile,
    LinkSpec,
    Outage,
    ProfileError,
    Rebind,
)
from tquic.sim.protocols import Endpoint, Side, Workload
from tquic.sim.report import FlowStats, Report, Stall, summary_table
from tquic.sim.runner import EndpointDriver, Flow, Runner
from tquic.sim.scenario import CLIENT_ADDR, SERVER_ADDR, Scenario, blackhole_outages, single_link

__all__ = [
    "CLIENT_ADDR",
    "DROP_CAUSES",
    "INTEROP_PROFILE",
    "INTEROP_RATE_BPS",
    "SERVER_ADDR",
    "Endpoint",
    "EndpointDriver",
    "EventLoop",
    "Flow",
    "FlowStats",
    "GilbertElliott",
    "Link",
    "LinkProfile",
    "LinkSpec",
    "LinkStats",
    "Outage",
    "Pipe",
    "PipeStats",
    "ProfileError",
    "Rebind",
    "Report",
    "Runner",
    "Scenario",
    "Side",
    "SimulationError",
    "Stall",
    "Workload",
    "blackhole_outages",
    "single_link",
    "summary_table",
]

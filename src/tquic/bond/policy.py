"""Link policy: which links carry traffic now, and why (pure: values in, decisions out).

Each tick the link manager hands in one :class:`LinkView` per link; the policy
returns each link's effective role (``primary``, ``backup``, ``never``) and the
reason whenever it differs from the configured role:

1. ``never`` (configured) or switched off by the operator: never.
2. Data cap of the period reached: backup (used only when no primary works).
3. Cut-offs: RTT above ``max_rtt`` or recent loss above ``max_loss`` for
   ``hold`` seconds: backup, until the link has been back under 0.8 x the
   limit for ``recover`` seconds (hysteresis, so a link does not flap).
4. The guard: the bond must never be slower than its best link alone.  While
   traffic is window-limited over two or more primaries, the policy measures
   the bond's goodput, then leaves the slowest primary out for ``probe_time``
   and measures again.  If the bond was faster without it (by 5 %), the link
   stays backup ("bond X Mbit/s with it, Y without"), and is tried again after
   ``retry_after``; otherwise it comes back at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tquic.bond.links_config import LinkConfig


@dataclass(frozen=True, slots=True)
class LinkView:
    """One link as measured over the last tick."""

    name: str
    up: bool  # a validated path exists
    srtt: float  # seconds (0: no sample)
    loss: float  # recent loss fraction
    goodput: float  # recent acknowledged bytes/s
    busy: bool  # window-limited recently (the application wants more than it gets)
    cap_reached: bool = False
    admin_down: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    role: str
    reason: str = ""


@dataclass(slots=True)
class _CutState:
    bad_since: float | None = None
    good_since: float | None = None
    demoted: str = ""  # the reason while demoted by a cut-off


@dataclass(slots=True)
class _Guard:
    phase: str = "idle"  # idle | measuring | probing
    started: float = 0.0
    with_all: list[float] = field(default_factory=list)
    without: list[float] = field(default_factory=list)
    candidate: str = ""
    demoted: dict[str, tuple[float, str]] = field(default_factory=dict)  # name -> (until, why)
    next_probe: float = 0.0


class LinkPolicy:
    def __init__(self, *, guard: bool = True, hold: float = 3.0, recover: float = 5.0,
                 probe_every: float = 30.0, probe_time: float = 3.0,
                 retry_after: float = 300.0, gain: float = 1.05) -> None:
        self.guard = guard
        self.hold = hold
        self.recover = recover
        self.probe_every = probe_every
        self.probe_time = probe_time
        self.retry_after = retry_after
        self.gain = gain
        self._cuts: dict[str, _CutState] = {}
        self._guard = _Guard()

    def decide(self, views: Sequence[LinkView], configs: dict[str, LinkConfig],
               now: float) -> dict[str, Decision]:
        out: dict[str, Decision] = {}
        for view in views:
            config = configs[view.name]
            out[view.name] = self._static(view, config, now)
        if self.guard:
            self._run_guard(views, out, now)
        return out

    def _static(self, view: LinkView, config: LinkConfig, now: float) -> Decision:
        if config.role == "never":
            return Decision("never")
        if view.admin_down:
            return Decision("never", "switched off by the operator")
        cut = self._cut(view, config, now)
        if view.cap_reached:
            return Decision("backup", "data cap reached")
        if cut:
            return Decision("backup", cut)
        return Decision(config.role)

    def _cut(self, view: LinkView, config: LinkConfig, now: float) -> str:
        state = self._cuts.setdefault(view.name, _CutState())
        why = ""
        recovered = True
        if view.up and config.max_rtt is not None and view.srtt > 0:
            if view.srtt > config.max_rtt:
                why = f"RTT {view.srtt * 1000:.0f} ms > max_rtt {config.max_rtt * 1000:.0f} ms"
            recovered = view.srtt < 0.8 * config.max_rtt
        if view.up and config.max_loss is not None and not why:
            if view.loss > config.max_loss:
                why = f"loss {view.loss:.1%} > max_loss {config.max_loss:.1%}"
            recovered = recovered and view.loss < 0.8 * config.max_loss
        if state.demoted:
            if recovered and view.up:
                state.good_since = state.good_since if state.good_since is not None else now
                if now - state.good_since >= self.recover:
                    state.demoted = ""
                    state.bad_since = state.good_since = None
                    return ""
            else:
                state.good_since = None
            return state.demoted
        if why:
            state.bad_since = state.bad_since if state.bad_since is not None else now
            if now - state.bad_since >= self.hold:
                state.demoted = why
                return why
        else:
            state.bad_since = None
        return ""

    def _run_guard(self, views: Sequence[LinkView], out: dict[str, Decision],
                   now: float) -> None:
        g = self._guard
        for name, (until, why) in list(g.demoted.items()):
            if now >= until:
                del g.demoted[name]
            elif out.get(name, Decision("never")).role == "primary":
                out[name] = Decision("backup", why)
        primaries = [v for v in views if v.up and out[v.name].role == "primary"]
        total = sum(v.goodput for v in views if v.up)
        busy = any(v.busy for v in primaries)
        if g.phase == "idle":
            if len(primaries) >= 2 and busy and now >= g.next_probe:
                g.phase, g.started, g.with_all = "measuring", now, []
            return
        if not busy:
            g.phase = "idle"  # demand went away: the comparison would mean nothing
            g.next_probe = now + self.probe_every
            return
        if g.phase == "measuring":
            g.with_all.append(total)
            if now - g.started >= self.probe_time and len(primaries) >= 2:
                slowest = min(primaries, key=lambda v: v.goodput)
                g.phase, g.started, g.without, g.candidate = "probing", now, [], slowest.name
            if g.phase == "probing":
                out[g.candidate] = Decision("backup", "guard: measuring the bond without it")
            return
        # probing: the candidate is left out while we measure
        if out.get(g.candidate, Decision("never")).role != "primary":
            g.phase = "idle"  # the operator or a cut-off took it out meanwhile
            return
        out[g.candidate] = Decision("backup", "guard: measuring the bond without it")
        g.without.append(total)
        if now - g.started < self.probe_time:
            return
        with_all = sum(g.with_all) / max(1, len(g.with_all))
        without = sum(g.without) / max(1, len(g.without))
        g.phase = "idle"
        g.next_probe = now + self.probe_every
        if without > with_all * self.gain:
            why = (f"guard: bond {with_all * 8 / 1e6:.1f} Mbit/s with it, "
                   f"{without * 8 / 1e6:.1f} Mbit/s without")
            g.demoted[g.candidate] = (now + self.retry_after, why)
            out[g.candidate] = Decision("backup", why)
        else:
            out[g.candidate] = Decision("primary")

"""Text output of ``tquic demo``: the live per-path table and the final summary.

On a terminal the table is redrawn in place (cursor up, clear to the end of
the screen); otherwise each refresh prints plain lines, so logs and pipes
stay readable.
"""

from __future__ import annotations

from collections.abc import Callable

from tquic.demo.live import DemoRun
from tquic.demo.model import DemoOptions, DemoSummary, PathSample

__all__ = ["LiveTable", "banner", "summary_text"]

CURSOR_UP = "\x1b[{}A"
CLEAR_DOWN = "\x1b[J"


def banner(options: DemoOptions) -> str:
    links = options.active_links
    mode = (f"multipath, scheduler {options.scheduler}" if options.multipath
            else "single path (--single-path)")
    lines = [f"tquic demo: {len(links)} link(s), {mode}, congestion control "
             f"{options.congestion_control}, {options.seconds:g} s"
             + (f" or {options.size} bytes" if options.size else "")]
    down = options.down_time
    for index, link in enumerate(links):
        note = f"  (down for good at {down:g} s)" if down is not None and (
            index == options.down_link) else ""
        lines.append(f"  link {index}: {link.host:<15} {link.label}{note}")
    return "\n".join(lines)


def _rows(options: DemoOptions, rows: list[PathSample], final: bool) -> list[str]:
    rate_head = "MB" if final else "Mbit/s"
    out = [f"  {'path':>4} {'source':<15} {'link':<26} {'state':<11} {'RTT ms':>7} "
           f"{rate_head:>7} {'share':>6} {'lost':>6}"]
    for r in rows:
        link = options.links[r.link]
        rtt = "-" if r.rtt_ms is None else f"{r.rtt_ms:.1f}"
        amount = r.bytes_received / 1e6 if final else r.rate_bps / 1e6
        out.append(f"  {r.path_id:>4} {r.host:<15} {link.label:<26} {r.state:<11} {rtt:>7} "
                   f"{amount:>7.2f} {r.share * 100:>5.0f}% {r.packets_lost:>6}")
    return out


class LiveTable:
    """``show`` callback of run_demo: redraws in place on a terminal."""

    def __init__(self, write: Callable[[str], None], tty: bool) -> None:
        self.write = write
        self.tty = tty
        self._drawn = 0

    def __call__(self, run: DemoRun, rows: list[PathSample], final: bool) -> None:
        if final:
            return  # the summary follows
        now = run.read_times[-1] if run.read_times else run.started
        elapsed = max(0.0, now - run.started)
        rate = run.received * 8 / elapsed / 1e6 if elapsed > 0 else 0.0
        lines = [f"t={elapsed:5.1f}s  received {run.received / 1e6:8.2f} MB  "
                 f"average {rate:6.2f} Mbit/s" + ("" if run.intact else "  DATA MISMATCH"),
                 *_rows(run.options, rows, final=False)]
        if self.tty and self._drawn:
            self.write(CURSOR_UP.format(self._drawn) + CLEAR_DOWN)
        self.write("\n".join(lines) + "\n")
        self._drawn = len(lines)


def summary_text(options: DemoOptions, s: DemoSummary) -> str:
    lines = ["", "summary:"]
    if s.multipath:
        lines.append(f"  multipath: {len(s.paths)} paths over {len(options.active_links)} links")
    else:
        lines.append(f"  multipath: NOT in use -- {s.multipath_note or 'not available'}")
    lines.append(f"  received {s.bytes_received / 1e6:.2f} MB in {s.seconds:.2f} s = "
                 f"{s.goodput_bps / 1e6:.2f} Mbit/s; data "
                 + ("intact (every byte checked)" if s.intact else "CORRUPTED"))
    capacity = sum(link.rate_bps for link in options.active_links)
    lines.append(f"  links' total rate {capacity / 1e6:g} Mbit/s; longest delivery stall "
                 f"{s.max_stall * 1000:.0f} ms"
                 + ("" if s.stall_after_down is None
                    else f"; around the link failure {s.stall_after_down * 1000:.0f} ms"))
    lines.extend(_rows(options, list(s.paths), final=True))
    if s.events:
        lines.append("  events:")
        lines.extend(f"    {e}" for e in s.events)
    if s.error:
        lines.append(f"  error: {s.error}")
    return "\n".join(lines)

"""Text for ``tquic bond status``: the daemon's line, a table per link, the tunnel, the clients.

Works on the API's JSON (so it shows exactly what the API answered), in the
shape of ``tquic demo``'s live table.
"""

from __future__ import annotations

import textwrap
from typing import Any

__all__ = ["duration", "endpoint_lines", "link_bars", "link_rows", "rate", "size", "status_text",
           "tunnel_lines"]

DOWN = ("down", "failed", "disabled", "abandoned")


def rate(bps: float | None) -> str:
    if bps is None:
        return "-"
    return f"{bps / 1e6:.2f}"


def size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{int(n)}B"


def duration(seconds: float) -> str:
    s = int(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {s % 60}s"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _ecn(state: str | None) -> str:
    """The path's ECN validation state (RFC 9000 §13.4.2); "off" when ECN is disabled."""
    return "off" if state in (None, "disabled") else str(state)


def link_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The per-link table: a head line and one line per link."""
    lines = [f"  {'link':<14} {'state':<10} {'role':<8} {'RTT ms':>7} {'min ms':>7} "
             f"{'down':>7} {'up':>7} {'share':>6} {'loss':>6} {'retx':>6} {'ecn':<8} "
             f"{'used/cap':>16}  note"]
    for link in rows:
        cap = link.get("data_cap")
        used = size(link.get("data_used"))
        if cap:
            used = f"{used}/{cap['text']}"
        role = link.get("role", "-")
        if link.get("weight", 1) != 1:
            role = f"{role}x{link['weight']:g}"
        note = ""
        if link.get("demoted"):
            note = f"demoted: {link['demoted']}"
        elif link.get("state") in DOWN:
            note = "not in use"
        # A bond client's link is where it leaves (interface, address); a server's path
        # is where the client is.
        where = link.get("interface") or (link.get("remote") if link.get("client")
                                          else link.get("local")) or ""
        if where and not note:
            note = where
        lines.append(
            f"  {link.get('name', '?')[:14]:<14} {link.get('state', '?'):<10} {role:<8} "
            f"{_ms(link.get('srtt')):>7} {_ms(link.get('min_rtt')):>7} "
            f"{rate(link.get('rate_down')):>7} {rate(link.get('rate_up')):>7} "
            f"{_pct(link.get('share')):>6} {_pct(link.get('loss')):>6} "
            f"{link.get('packets_retransmitted', 0):>6} {_ecn(link.get('ecn')):<8} "
            f"{used:>16}  {note}")
    if not rows:
        lines.append("  (no links)")
    return lines


def link_bars(rows: list[dict[str, Any]], width: int = 32) -> list[str]:
    """One bar per link (``--watch``): its share of the bond's bytes over the last
    sample, as the dashboard's card bar, with the link's rate down and up."""
    lines = ["  share of the bond's bytes over the last sample:"]
    for link in rows:
        share = max(0.0, min(1.0, float(link.get("share") or 0.0)))
        filled = round(share * width)
        bar = "#" * filled + "." * (width - filled)
        lines.append(f"  {link.get('name', '?')[:14]:<14} [{bar}] {_pct(share):>6}  "
                     f"down {rate(link.get('rate_down')):>7} up {rate(link.get('rate_up')):>7}"
                     " Mbit/s")
    return lines


def tunnel_lines(tunnel: dict[str, Any]) -> list[str]:
    """The tunnel's packets, drops, reorder buffer and FEC counters (the dashboard's
    tunnel table)."""
    drops = ", ".join(f"{k} {v}" for k, v in tunnel.get("drops", {}).items() if v) or "none"
    reorder = tunnel.get("reorder", {})
    bound = reorder.get("bound")
    lines = [f"  tunnel: in {tunnel.get('packets_in', 0)} packets "
             f"({size(tunnel.get('bytes_in'))}), out {tunnel.get('packets_out', 0)} "
             f"({size(tunnel.get('bytes_out'))}); dropped: {drops}",
             f"  reorder buffer: held {reorder.get('held', 0)}, late "
             f"{reorder.get('late', 0)}, given up {reorder.get('lost', 0)}, added delay p50 "
             f"{_ms(reorder.get('delay_p50'))} ms, p99 {_ms(reorder.get('delay_p99'))} ms, "
             f"wait bound {'off' if bound is None else _ms(bound) + ' ms'}"]
    fec = tunnel.get("fec") or {}
    if fec:  # the counters that moved (the dashboard lists them all)
        moved = ", ".join(f"{k} {v}" for k, v in fec.items() if v)
        lines.append(f"  fec: {moved or 'on, nothing protected or recovered yet'}")
    return lines


def endpoint_lines(endpoint: dict[str, Any]) -> list[str]:
    """A server's QUIC endpoint: Retry and the kernel's peer filter on or off,
    handshakes, connections, then the defence counters that moved (peers blocked and
    datagrams dropped always)."""
    events = endpoint.get("events") or {}
    first = ("peers_blocked", "datagrams_dropped")
    counts = [f"{k.replace('_', ' ')} {events.get(k, 0)}" for k in first] + [
        f"{k.replace('_', ' ')} {v}" for k, v in events.items() if v and k not in first]
    return [f"  endpoint: Retry {'on' if endpoint.get('retry_active') else 'off'}, kernel filter "
            f"{'on' if endpoint.get('kernel_filter') else 'off'}, "
            f"{endpoint.get('handshakes_in_progress', 0)} handshakes in progress, "
            f"{endpoint.get('connections', 0)} connections",
            *textwrap.wrap(", ".join(counts), 100, initial_indent="  ",
                           subsequent_indent="    ")]


def status_text(status: dict[str, Any], links: dict[str, Any],
                tunnel: dict[str, Any] | None = None,
                clients: list[dict[str, Any]] | None = None, *, bars: bool = False) -> str:
    """``bars``: the ``--watch`` view's per-link bars under the table."""
    head = (f"tquic {status.get('daemon', '?')} {status.get('version', '')}  "
            f"up {duration(float(status.get('uptime', 0)))}  "
            f"links {status.get('links_up', 0)}/{status.get('links', 0)}  "
            f"down {rate(status.get('rate_down'))} Mbit/s  up {rate(status.get('rate_up'))} Mbit/s"
            f"  (sample #{status.get('seq', '-')})")
    lines = [head]
    extra = []
    if status.get("tunnel_address"):
        extra.append("tunnel " + ", ".join(status["tunnel_address"]))
    if status.get("peers"):
        extra.append("peer " + ", ".join(status["peers"]))
    if extra:
        lines.append("  " + "  ".join(extra))
    lines.extend(link_rows(links.get("links", [])))
    lines.append("  (down/up in Mbit/s over the last sample; retx: packets whose data was "
                 "resent; ecn: the path's ECN validation)")
    if bars and links.get("links"):
        lines.extend(link_bars(links["links"]))
    if tunnel:
        lines.extend(tunnel_lines(tunnel))
    if status.get("endpoint"):
        lines.extend(endpoint_lines(status["endpoint"]))
    if clients:
        lines.append(f"  {'client':<16} {'remote':<24} {'paths':>5} {'sent':>9} {'received':>9}")
        for client in clients:
            lines.append(f"  {client.get('name', '?')[:16]:<16} {client.get('remote', ''):<24} "
                         f"{client.get('paths', 0):>5} {size(client.get('bytes_sent')):>9} "
                         f"{size(client.get('bytes_received')):>9}")
    return "\n".join(lines)

"""What the transport did, for ``tquic client``'s summary: per connection the
negotiated ALPN, QUIC version, cipher suite and multipath, and per path its
addresses, RTT, window, loss and ECN figures (from ``QuicConnection.path_stats``).

Read at the end of the transfers, before the connection closes.  ``-v`` also
turns on the ``tquic`` loggers (INFO, ``-vv`` DEBUG) on stderr.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from typing import Any

from tquic.io.protocol import QuicConnectionProtocol
from tquic.wire.version import QUIC_V1, QUIC_V2

_LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"


def setup_logging(verbosity: int) -> None:
    """``-v``: the ``tquic`` loggers at INFO on stderr; ``-vv``: DEBUG.  Without ``-v``
    nothing is configured (warnings still reach stderr through logging's last resort)."""
    if verbosity <= 0:
        return
    logger = logging.getLogger("tquic")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT, datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
    logger.propagate = False  # one line per record, even if the root logger is set up


def version_name(version: int) -> str:
    if version == QUIC_V1:
        return "v1"
    if version == QUIC_V2:
        return "v2"
    return f"0x{version:08x}"


def _address(addr: Sequence[Any]) -> str:
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"


def _ms(seconds: float) -> float | None:
    """Milliseconds, or None for a path without an RTT sample yet (min RTT still
    infinite; JSON has no Infinity)."""
    return round(seconds * 1000, 3) if math.isfinite(seconds) else None


def rtt_text(min_ms: float | None, srtt_ms: float) -> str:
    return f"{'-' if min_ms is None else f'{min_ms:.1f}'}/{srtt_ms:.1f} ms"


def transport_entry(conn: QuicConnectionProtocol, now: float) -> dict[str, Any]:
    """The transport fields of a connection's ``connections`` JSON entry."""
    quic = conn.quic
    suite = quic.cipher_suite
    paths = []
    for stats in quic.path_stats(now):
        network = stats.network_path
        paths.append({
            "path_id": stats.path_id, "local": _address(network.local),
            "remote": _address(network.remote), "state": stats.state,
            "srtt_ms": round(stats.srtt * 1000, 3), "min_rtt_ms": _ms(stats.min_rtt),
            "cwnd": stats.cwnd, "packets_sent": stats.packets_sent,
            "packets_lost": stats.packets_lost,
            "packets_retransmitted": stats.packets_retransmitted,
            "bytes_sent": stats.bytes_sent, "bytes_received": stats.bytes_received,
            "ecn": stats.ecn,
        })
    return {"alpn": conn.alpn_protocol, "quic_version": version_name(quic.version),
            "cipher_suite": None if suite is None else suite.name,
            "multipath": bool(quic.multipath_enabled), "paths": paths}


def connection_line(entry: dict[str, Any]) -> str:
    """One short line: protocol, RTT (min/smoothed over the paths) and losses."""
    paths: list[dict[str, Any]] = entry.get("paths", [])
    head = f"{entry['server']}: {entry.get('alpn')} over QUIC {entry.get('quic_version')}"
    if entry.get("multipath"):
        head += f", multipath ({len(paths)} paths)"
    if not paths:
        return head
    # RTT over the paths that measured one (a path opened by a failover may have no
    # sample yet: its smoothed RTT is still the initial guess, its minimum unset); the
    # best path's smoothed RTT; losses over all paths.
    sampled = [p for p in paths if p.get("min_rtt_ms") is not None]
    if sampled:
        best = min(sampled, key=lambda p: p["srtt_ms"])
        rtt = rtt_text(min(p["min_rtt_ms"] for p in sampled), best["srtt_ms"])
    else:
        rtt = "not measured"
    sent = sum(p["packets_sent"] for p in paths)
    lost = sum(p["packets_lost"] for p in paths)
    return f"{head}, rtt {rtt} (min/smoothed), {lost} of {sent} packets sent lost"


def path_lines(entry: dict[str, Any]) -> list[str]:
    """``-v``: one line per path with the window, retransmissions and ECN state."""
    lines = [f"  cipher {entry.get('cipher_suite')}"]
    for p in entry.get("paths", []):
        lines.append(
            f"  path {p['path_id']} {p['local']} -> {p['remote']} {p['state']}: "
            f"rtt {rtt_text(p['min_rtt_ms'], p['srtt_ms'])}, cwnd {p['cwnd']}, "
            f"sent {p['packets_sent']} pkts/{p['bytes_sent']} B, "
            f"received {p['bytes_received']} B, lost {p['packets_lost']}, "
            f"retransmitted {p['packets_retransmitted']}, ECN {p['ecn']}")
    return lines

"""What the transport did, for ``tquic client``'s summary: per connection the
negotiated ALPN, QUIC version, cipher suite and multipath, and per path its
addresses, RTT, window, loss and ECN figures (from ``QuicConnection.path_stats``).

Read at the end of the transfers, before the connection closes.  ``-v`` also
turns on the ``tquic`` loggers (INFO, ``-vv`` DEBUG) on stderr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from tquic.io.protocol import QuicConnectionProtocol
from tquic.wire.version import QUIC_V1, QUIC_V2

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
            "srtt_ms": round(stats.srtt * 1000, 3), "min_rtt_ms": round(stats.min_rtt * 1000, 3),
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
    # The best path's RTT; losses over all paths.
    best = min(paths, key=lambda p: p["srtt_ms"])
    sent = sum(p["packets_sent"] for p in paths)
    lost = sum(p["packets_lost"] for p in paths)
    return (f"{head}, rtt {best['min_rtt_ms']:.1f}/{best['srtt_ms']:.1f} ms (min/smoothed), "
            f"{lost} of {sent} packets sent lost")


def path_lines(entry: dict[str, Any]) -> list[str]:
    """``-v``: one line per path with the window, retransmissions and ECN state."""
    lines = [f"  cipher {entry.get('cipher_suite')}"]
    for p in entry.get("paths", []):
        lines.append(
            f"  path {p['path_id']} {p['local']} -> {p['remote']} {p['state']}: "
            f"rtt {p['min_rtt_ms']:.1f}/{p['srtt_ms']:.1f} ms, cwnd {p['cwnd']}, "
            f"sent {p['packets_sent']} pkts/{p['bytes_sent']} B, "
            f"received {p['bytes_received']} B, lost {p['packets_lost']}, "
            f"retransmitted {p['packets_retransmitted']}, ECN {p['ecn']}")
    return lines

"""What the I/O layer adds to a connection's qlog: the events only it sees.

The engine traces packets and frames (core/qlog_events.py); the driver traces the
UDP datagrams around them, the recovery metrics when a value changed, the tuple
(path) assignments and the close (qlog quic events: udp_datagrams_sent/received,
recovery_metrics_updated, tuple_assigned, connection_closed).  One ``IoTrace`` per
connection owns the logger and the little state that needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tquic.paths.network_path import Address, NetworkPath

if TYPE_CHECKING:
    from tquic.qlog import QuicLogger


class IoTrace:
    """The driver's side of one connection's qlog."""

    __slots__ = ("_logger", "_metrics", "_received")

    def __init__(self, logger: QuicLogger) -> None:
        self._logger = logger
        self._received: list[int] = []  # datagram sizes since the last flush
        self._metrics: dict[int, dict[str, Any]] = {}  # per path ID: last values logged

    def received(self, size: int) -> None:
        self._received.append(size)

    def flush(self, now: float, sent: list[tuple[bytes, NetworkPath]],
              paths: Iterable[Any]) -> None:
        """The datagrams received and sent since the last flush, and every path's
        recovery metrics that changed."""
        log = self._logger.log
        if self._received:
            log(now, "quic:udp_datagrams_received", {
                "count": len(self._received),
                "raw": [{"length": n} for n in self._received]})
            self._received = []
        if sent:
            log(now, "quic:udp_datagrams_sent", {
                "count": len(sent), "raw": [{"length": len(d)} for d, _ in sent]})
        for path in paths:
            recovery = getattr(path, "recovery", None)
            if recovery is None:
                continue
            rtt = recovery.rtt
            metrics: dict[str, Any] = {
                "congestion_window": recovery.controller.congestion_window,
                "bytes_in_flight": recovery.bytes_in_flight,
                "pto_count": recovery.pto_count,
            }
            if rtt.has_sample:
                metrics.update(smoothed_rtt=round(rtt.smoothed_rtt * 1000, 3),
                               min_rtt=round(rtt.min_rtt * 1000, 3),
                               latest_rtt=round(rtt.latest_rtt * 1000, 3),
                               rtt_variance=round(rtt.rttvar * 1000, 3))
            path_id = int(getattr(path, "path_id", 0))
            previous = self._metrics.get(path_id, {})
            changed = {k: v for k, v in metrics.items() if previous.get(k) != v}
            if changed:
                self._metrics[path_id] = metrics
                log(now, "quic:recovery_metrics_updated", {**changed, "path_id": path_id})

    def tuple_assigned(self, now: float, path_id: int, network_path: NetworkPath) -> None:
        self._logger.log(now, "quic:tuple_assigned", {
            "tuple_id": str(path_id),
            "tuple_remote": _endpoint_info(network_path.remote),
            "tuple_local": _endpoint_info(network_path.local),
        })

    def closed(self, now: float, by_peer: bool, application: bool, error_code: int,
               reason: str) -> None:
        self._logger.log(now, "quic:connection_closed", {
            "owner": "remote" if by_peer else "local",
            ("application_code" if application else "connection_code"): error_code,
            "reason": reason,
        })

    def end(self, now: float, still_open: bool) -> None:
        """Finish the file with the CONNECTION_CLOSE just sent by the application.

        The closing period runs on in the background, and a process that exits (the
        CLI does at once) never reaches the connection's end: without this a 0.3 file
        would stay empty and a seq file would lose its buffered tail.  What the closing
        period does later (at most answering a late packet, RFC 9000 §10.2.1) is not
        traced.
        """
        if still_open:
            self._logger.log(now, "quic:connection_closed", {
                "owner": "local", "trigger": "application",
                "reason": "closed by the application"})
        self._logger.close()

    def close(self) -> None:
        self._logger.close()


def _endpoint_info(addr: Address) -> dict[str, Any]:
    if ":" in addr[0]:
        return {"ip_v6": addr[0], "port_v6": addr[1]}
    return {"ip_v4": addr[0], "port_v4": addr[1]}

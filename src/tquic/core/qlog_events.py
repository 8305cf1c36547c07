"""qlog events from the engine (draft-ietf-quic-qlog-quic-events).

The connection holds ``_qlog: EngineQlog | None``; every call site is guarded by
one ``if self._qlog is not None`` so a connection without a logger pays nothing
else.  Events are written through the logger's ``log(now, name, data)`` (the
interface of tquic.qlog.QuicLogger), with the engine's ``now``; a plain
``QuicConfiguration.quic_logger`` callable ``(name, data)`` works too.

Frames are summarised cheaply: for packets sent, from the engine's
retransmission records (core/records.py), not by re-parsing; for packets
received, from the parsed frame objects.  Events logged:

- quic:packet_sent, quic:packet_received (header: packet_type, packet_number,
  key_phase for 1-RTT; raw.length; frames; path_id — the multipath extension)
- quic:packets_acked, quic:packet_lost (trigger), quic:recovery_metrics_updated
  (only when a metric changed, per path)
- quic:key_updated / quic:key_discarded (trigger tls, local_update, remote_update)
- quic:connection_state_updated, quic:version_information, quic:tuple_assigned
  (one tuple per path ID), quic:connection_closed
- multipath (draft-ietf-quic-multipath; the qlog drafts define no multipath events
  yet, so these live in their own ``multipath`` namespace, as the main schema
  allows for extensions): ``multipath:path_assigned`` when a path ID gets its
  4-tuple (opened by us or accepted from the peer; tuple_id = the path ID, as in
  quic:tuple_assigned) and ``multipath:path_updated`` {path_id, old, new, ...} for
  every later change: validated, available / backup (PATH_STATUS_*, initiator
  local or remote), failed (reason), abandoned (PATH_ABANDON error_code,
  initiator), closed (state forgotten after the 3 PTO retention)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from tquic.core.conn_base import Epoch
from tquic.core.events import (
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    PathAbandoned,
    PathAvailable,
    PathFailed,
    PathMigrated,
    PathStatusChanged,
    PathValidated,
)
from tquic.core.records import (
    AckRecord,
    CryptoRecord,
    FrameRecord,
    HandshakeDoneRecord,
    MaxDataRecord,
    MaxStreamDataRecord,
    MaxStreamsRecord,
    PmtuProbeRecord,
    Record,
    ResetStreamRecord,
    RetireCidRecord,
    StopSendingRecord,
    StreamRecord,
)
from tquic.wire.frame_types import (
    AckFrame,
    ConnectionCloseFrame,
    CryptoFrame,
    DatagramFrame,
    StreamFrame,
)

LogFn = Callable[[float, str, dict[str, Any]], None]

PACKET_TYPE = {Epoch.INITIAL: "initial", Epoch.ZERO_RTT: "0RTT", Epoch.HANDSHAKE: "handshake",
               Epoch.ONE_RTT: "1RTT"}
_SPACE_TYPE = {0: "initial", 1: "handshake", 2: "1RTT"}  # SpaceId -> packet type
_SPACE_NAME = {0: "initial", 1: "handshake", 2: "application_data"}
_KEY_LEVEL = {Epoch.INITIAL: "initial", Epoch.ZERO_RTT: "0rtt", Epoch.HANDSHAKE: "handshake",
              Epoch.ONE_RTT: "1rtt"}
_RECORD_NAME: dict[type, str] = {
    HandshakeDoneRecord: "handshake_done", MaxDataRecord: "max_data",
    RetireCidRecord: "retire_connection_id", MaxStreamsRecord: "max_streams"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_frame_names: dict[type, str] = {}


def frame_type_name(frame: object) -> str:
    """qlog frame_type of a frame object: ``NewConnectionIdFrame`` -> new_connection_id."""
    cls = type(frame)
    name = _frame_names.get(cls)
    if name is None:
        name = _CAMEL.sub("_", cls.__name__.removesuffix("Frame")).lower()
        _frame_names[cls] = name
    return name


def close_frame_fields(frame: ConnectionCloseFrame) -> dict[str, Any]:
    """A CONNECTION_CLOSE as qlog's ConnectionCloseFrame: error space, code, reason and,
    for a transport close, the frame type that triggered it (RFC 9000 §19.19)."""
    out: dict[str, Any] = {
        "frame_type": "connection_close",
        "error_space": "application" if frame.is_application else "transport",
        "error_code": frame.error_code,
        "reason": frame.reason.decode("utf-8", "replace")}
    if not frame.is_application and frame.frame_type is not None:
        out["trigger_frame_type"] = frame.frame_type
    return out


def summarise_records(records: Iterable[Record], padding: int,
                      close: ConnectionCloseFrame | None = None) -> list[dict[str, Any]]:
    """Frames of a sent packet from its retransmission records (no re-parsing), and
    the CONNECTION_CLOSE it carries, which has no record (it is never resent)."""
    out: list[dict[str, Any]] = []
    for record in records:
        if isinstance(record, StreamRecord):
            out.append({"frame_type": "stream", "stream_id": record.stream_id,
                        "offset": record.offset, "length": record.length,
                        "fin": bool(record.fin)})
        elif isinstance(record, AckRecord):
            out.append({"frame_type": "ack"})
        elif isinstance(record, CryptoRecord):
            out.append({"frame_type": "crypto", "offset": record.offset,
                        "length": record.length})
        elif isinstance(record, FrameRecord):
            out.append({"frame_type": frame_type_name(record.frame)})
        elif isinstance(record, MaxStreamDataRecord):
            out.append({"frame_type": "max_stream_data", "stream_id": record.stream_id})
        elif isinstance(record, ResetStreamRecord):
            out.append({"frame_type": "reset_stream", "stream_id": record.stream_id})
        elif isinstance(record, StopSendingRecord):
            out.append({"frame_type": "stop_sending", "stream_id": record.stream_id})
        elif isinstance(record, PmtuProbeRecord):
            out.append({"frame_type": "ping"})
        elif type(record) in _RECORD_NAME:
            out.append({"frame_type": _RECORD_NAME[type(record)]})
    if close is not None:  # the last frame the packet builder adds (after an ACK)
        out.append(close_frame_fields(close))
    if padding:
        out.append({"frame_type": "padding", "payload_length": padding})
    return out


def summarise_frames(frames: Iterable[object]) -> list[dict[str, Any]]:
    """Frames of a received packet: type, plus the fields a trace reader needs most."""
    out: list[dict[str, Any]] = []
    for frame in frames:
        if isinstance(frame, StreamFrame):
            out.append({"frame_type": "stream", "stream_id": frame.stream_id,
                        "offset": frame.offset, "length": len(frame.data), "fin": frame.fin})
        elif isinstance(frame, AckFrame):
            out.append({"frame_type": "ack",
                        "acked_ranges": [[lo, hi] for lo, hi in frame.ranges]})
        elif isinstance(frame, CryptoFrame):
            out.append({"frame_type": "crypto", "offset": frame.offset,
                        "length": len(frame.data)})
        elif isinstance(frame, DatagramFrame):
            out.append({"frame_type": "datagram", "length": len(frame.data)})
        elif isinstance(frame, ConnectionCloseFrame):
            out.append(close_frame_fields(frame))
        else:
            out.append({"frame_type": frame_type_name(frame)})
    return out


def _endpoint(address: tuple[Any, ...]) -> dict[str, Any]:
    """TupleEndpointInfo of an (host, port) address."""
    host, port = address[0], address[1]
    if ":" in str(host):
        return {"ip_v6": host, "port_v6": port}
    return {"ip_v4": host, "port_v4": port}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class EngineQlog:
    """The connection's qlog writer: turns engine facts into qlog events."""

    __slots__ = ("_is_client", "_key_updates", "_last_now", "_log", "_metrics", "_path_states",
                 "_pending")

    def __init__(self, log: LogFn, is_client: bool) -> None:
        self._log = log
        self._is_client = is_client
        # Events raised where the engine has no ``now`` (key installs, application
        # calls) take the latest engine time; before the first timed event they wait
        # for it, so a trace never starts before the connection does.
        self._last_now: float | None = None
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._metrics: dict[int, tuple[Any, ...]] = {}
        self._key_updates = 0
        # Last multipath:path_updated state per path ID (for "old"); forgotten on "closed".
        self._path_states: dict[int, str] = {}

    @classmethod
    def create(cls, hook: Any, is_client: bool) -> EngineQlog | None:
        """None without a logger (then the engine logs nothing and pays one check)."""
        if hook is None:
            return None
        log = getattr(hook, "log", None)
        if callable(log):
            return cls(log, is_client)
        if not callable(hook):
            raise TypeError("quic_logger must have log(now, name, data) or be callable")

        def call(_now: float, name: str, data: dict[str, Any]) -> None:
            hook(name, data)

        return cls(call, is_client)

    def emit(self, now: float, name: str, data: dict[str, Any]) -> None:
        self._last_now = now
        if self._pending:
            pending, self._pending = self._pending, []
            for early_name, early_data in pending:
                self._log(now, early_name, early_data)
        self._log(now, name, data)

    def emit_untimed(self, name: str, data: dict[str, Any]) -> None:
        """An event raised without ``now``: at the latest engine time (see __init__)."""
        if self._last_now is None:
            if len(self._pending) < 64:
                self._pending.append((name, data))
            return
        self._log(self._last_now, name, data)

    # -- packets ---------------------------------------------------------------------

    def packet_sent(self, now: float, epoch: int, pn: int, size: int, path_id: int,
                    records: list[Record], padding: int, key_phase: int | None,
                    close: ConnectionCloseFrame | None = None) -> None:
        header: dict[str, Any] = {"packet_type": PACKET_TYPE[Epoch(epoch)],
                                  "packet_number": pn}
        if key_phase is not None:
            header["key_phase_bit"] = bool(key_phase)
        self.emit(now, "quic:packet_sent", {
            "header": header, "raw": {"length": size}, "path_id": path_id,
            "frames": summarise_records(records, padding, close)})

    def packet_received(self, now: float, epoch: int, pn: int, size: int, path_id: int,
                        frames: list[Any], first_byte: int, key_updates: int | None) -> None:
        header: dict[str, Any] = {"packet_type": PACKET_TYPE[Epoch(epoch)],
                                  "packet_number": pn}
        if key_updates is not None:
            if key_updates != self._key_updates:
                # Our send keys rotated while opening this packet: the peer updated.
                self.key_update(now, key_updates, "remote_update")
            header["key_phase_bit"] = bool(first_byte & 0x04)  # RFC 9000 §17.3.1
        self.emit(now, "quic:packet_received", {
            "header": header, "raw": {"length": size}, "path_id": path_id,
            "frames": summarise_frames(frames)})

    # -- recovery --------------------------------------------------------------------

    def ack_outcome(self, now: float, recovery: Any, path_id: int, space: int,
                    acked: list[Any], lost: list[Any]) -> None:
        if acked:
            data: dict[str, Any] = {"packet_numbers": [p.packet_number for p in acked],
                                    "path_id": path_id}
            if space != 2:
                data["packet_number_space"] = _SPACE_NAME[space]
            self.emit(now, "quic:packets_acked", data)
        self.lost(now, path_id, lost, "reordering_threshold")
        self.metrics(now, recovery, path_id)

    def lost(self, now: float, path_id: int, packets: list[Any], trigger: str) -> None:
        # RFC 9002 §6.1: losses found on an ACK are by packet or time threshold; on the
        # timer always by time.  One trigger per batch keeps this cheap.
        for packet in packets:
            self.emit(now, "quic:packet_lost", {
                "header": {"packet_type": _SPACE_TYPE[int(packet.space)],
                           "packet_number": packet.packet_number},
                "path_id": path_id, "trigger": trigger})

    def metrics(self, now: float, recovery: Any, path_id: int) -> None:
        """quic:recovery_metrics_updated with the fields that changed since the last one."""
        rtt = recovery.rtt
        controller = recovery.controller
        pacing = recovery.pacing_rate()
        values = (
            _ms(rtt.min_rtt) if math.isfinite(rtt.min_rtt) else None,
            _ms(rtt.smoothed_rtt), _ms(rtt.latest_rtt), _ms(rtt.rttvar),
            recovery.pto_count, int(controller.congestion_window), recovery.bytes_in_flight,
            None if pacing is None else int(pacing * 8),
        )
        previous = self._metrics.get(path_id)
        if previous == values:
            return
        self._metrics[path_id] = values
        names = ("min_rtt", "smoothed_rtt", "latest_rtt", "rtt_variance", "pto_count",
                 "congestion_window", "bytes_in_flight", "pacing_rate")
        data: dict[str, Any] = {
            name: value for i, (name, value) in enumerate(zip(names, values, strict=True))
            if value is not None and (previous is None or previous[i] != value)}
        data["path_id"] = path_id
        self.emit(now, "quic:recovery_metrics_updated", data)

    # -- keys ------------------------------------------------------------------------

    def key_installed(self, epoch: int, is_write: bool) -> None:
        """A secret from TLS (or the Initial secrets): quic:key_updated, trigger tls."""
        side = "client" if is_write == self._is_client else "server"
        self.emit_untimed("quic:key_updated", {
            "key_type": f"{side}_{_KEY_LEVEL[Epoch(epoch)]}_secret", "trigger": "tls"})

    def key_discarded(self, epoch: int) -> None:
        level = _KEY_LEVEL[Epoch(epoch)]
        for side in ("client", "server"):
            self.emit_untimed("quic:key_discarded", {
                "key_type": f"{side}_{level}_secret", "trigger": "tls"})

    def local_key_update(self, updates: int) -> None:
        self.key_update(None, updates, "local_update")

    def key_update(self, now: float | None, updates: int, trigger: str) -> None:
        """1-RTT key update (RFC 9001 §6); key_phase is the full phase counter."""
        self._key_updates = updates
        for side in ("client", "server"):
            data = {"key_type": f"{side}_1rtt_secret", "key_phase": updates,
                    "trigger": trigger}
            if now is None:
                self.emit_untimed("quic:key_updated", data)
            else:
                self.emit(now, "quic:key_updated", data)

    # -- connection events ----------------------------------------------------------

    def on_event(self, event: Event) -> None:
        emit = self.emit_untimed
        if isinstance(event, ConnectionTerminated):
            data: dict[str, Any] = {"initiator": "remote" if event.by_peer else "local",
                                    "error_code": event.error_code, "reason": event.reason}
            if event.application:
                data["application_error"] = "unknown"
            else:
                data["connection_error"] = "unknown"
            reason = event.reason
            data["trigger"] = ("idle_timeout" if reason == "idle timeout" else
                               "stateless_reset" if reason == "stateless reset" else
                               "application" if event.application else
                               "error" if event.error_code else "unspecified")
            emit("quic:connection_closed", data)
        elif isinstance(event, HandshakeCompleted):
            emit("quic:connection_state_updated", {"new": "handshake_complete"})
        elif isinstance(event, PathValidated | PathMigrated | PathAvailable):
            emit("quic:tuple_assigned", {
                "tuple_id": str(event.path_id),
                "tuple_local": _endpoint(event.network_path.local),
                "tuple_remote": _endpoint(event.network_path.remote)})
            if isinstance(event, PathAvailable):
                self._path_states[event.path_id] = "new"
                emit("multipath:path_assigned", {
                    "path_id": event.path_id, "tuple_id": str(event.path_id),
                    "path_local": _endpoint(event.network_path.local),
                    "path_remote": _endpoint(event.network_path.remote)})
            elif isinstance(event, PathValidated):
                self.path_updated(event.path_id, "validated")
        elif isinstance(event, PathAbandoned | PathFailed):
            # quic:tuple_assigned without endpoints: the tuple is abandoned.
            emit("quic:tuple_assigned", {"tuple_id": str(event.path_id)})
            if isinstance(event, PathFailed):
                self.path_updated(event.path_id, "failed", reason=event.reason)
            else:
                self.path_updated(event.path_id, "abandoned", error_code=event.error_code,
                                  initiator="remote" if event.by_peer else "local")
        elif isinstance(event, PathStatusChanged):
            self.path_updated(event.path_id, "backup" if event.backup else "available",
                              initiator="remote" if event.by_peer else "local")

    def path_updated(self, path_id: int, new: str, **extra: Any) -> None:
        """multipath:path_updated: ``path_id`` went from its previous state to ``new``."""
        states = self._path_states
        data: dict[str, Any] = {"path_id": path_id}
        old = states.get(path_id)
        if old is not None:
            data["old"] = old
        data["new"] = new
        data.update(extra)
        if new == "closed":
            states.pop(path_id, None)
        elif len(states) < 1024 or path_id in states:  # bounded like the paths
            states[path_id] = new
        self.emit_untimed("multipath:path_updated", data)

    def parameters_set(self, owner: str, params: Any) -> None:
        """quic:parameters_set: one endpoint's transport parameters (RFC 9000 §18.2 names,
        which the qlog draft uses too); CIDs and tokens in hex, absent ones left out."""
        data: dict[str, Any] = {"owner": owner}
        for name in params.__dataclass_fields__:
            value = getattr(params, name)
            if value is None or name in ("unknown", "preferred_address"):
                continue
            if name == "version_information":
                data["chosen_version"] = f"{value.chosen_version:08x}"
                data["available_versions"] = [f"{v:08x}" for v in value.available_versions]
            elif isinstance(value, bytes):
                data[name] = value.hex()
            else:
                data[name] = value
        self.emit_untimed("quic:parameters_set", data)

    def version_chosen(self, version: int, server_versions: tuple[int, ...] | None) -> None:
        data: dict[str, Any] = {"chosen_version": f"{version:08x}"}
        if server_versions:
            data["server_versions"] = [f"{v:08x}" for v in server_versions]
        self.emit_untimed("quic:version_information", data)

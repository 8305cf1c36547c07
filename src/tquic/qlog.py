"""qlog: structured traces of QUIC connections, one file per connection.

Two serializations:

- ``"seq"`` (default): the QlogFileSeq schema of draft-ietf-quic-qlog-main-schema
  ("QlogFileSeq schema"), JSON Text Sequences (RFC 7464): every record starts
  with the ASCII Record Separator (0x1E) and ends with a newline; the first
  record is the header (file_schema, serialization_format, trace), every
  following record one event.  Written as events arrive, so a crashed process
  still leaves a readable trace.  Files end in ``.sqlog``.
- ``"0.3"``: the older single-JSON-document format (``"qlog_version": "0.3"``)
  that qvis (qvis.quictools.info) loads; events are buffered and written on
  :meth:`QuicLogger.close`.  Files end in ``.qlog``.

The engine (``tquic.core``) calls ``logger.log(now, "quic:packet_sent", data)``
with ``now`` in seconds on its own clock; the event names and data shapes are
those of draft-ietf-quic-qlog-quic-events ("quic:packet_sent",
"quic:packet_received", "quic:packets_acked", "quic:packet_lost",
"quic:recovery_metrics_updated", "quic:connection_started",
"quic:tuple_assigned", ...).  The 0.3 names ("transport:packet_sent",
"recovery:metrics_updated", "connectivity:connection_started", ...) are
accepted as well; each serialization writes the names of its own schema.

The object is also callable as ``logger(name, data)`` (the
``QuicConfiguration.quic_logger`` hook signature), in which case the time is
the ``now`` of the latest :meth:`log` call or, before any, the logger's clock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, Literal

QlogFormat = Literal["seq", "0.3"]
Vantage = Literal["client", "server", "network", "unknown"]

RECORD_SEPARATOR = "\x1e"
FILE_SCHEMA_SEQ = "urn:ietf:params:qlog:file:sequential"
SERIALIZATION_SEQ = "application/qlog+json-seq"
QUIC_EVENT_SCHEMA = "urn:ietf:params:qlog:events:quic"
DEFAULT_MAX_EVENTS = 2_000_000  # bound on buffered events in 0.3 mode (DESIGN: bound everything)

# draft-ietf-quic-qlog-quic-events name -> qlog 0.3 (draft-ietf-quic-qlog-quic-events-02/03) name.
_TO_V03: dict[str, str] = {
    "quic:server_listening": "connectivity:server_listening",
    "quic:connection_started": "connectivity:connection_started",
    "quic:connection_closed": "connectivity:connection_closed",
    "quic:connection_id_updated": "connectivity:connection_id_updated",
    "quic:connection_state_updated": "connectivity:connection_state_updated",
    "quic:spin_bit_updated": "connectivity:spin_bit_updated",
    "quic:tuple_assigned": "connectivity:path_assigned",
    "quic:migration_state_updated": "connectivity:migration_state_updated",
    "quic:mtu_updated": "connectivity:mtu_updated",
    "quic:version_information": "transport:version_information",
    "quic:alpn_information": "transport:alpn_information",
    "quic:parameters_set": "transport:parameters_set",
    "quic:parameters_restored": "transport:parameters_restored",
    "quic:packet_sent": "transport:packet_sent",
    "quic:packet_received": "transport:packet_received",
    "quic:packet_dropped": "transport:packet_dropped",
    "quic:packet_buffered": "transport:packet_buffered",
    "quic:packets_acked": "transport:packets_acked",
    "quic:udp_datagrams_sent": "transport:datagrams_sent",
    "quic:udp_datagrams_received": "transport:datagrams_received",
    "quic:udp_datagram_dropped": "transport:datagram_dropped",
    "quic:stream_state_updated": "transport:stream_state_updated",
    "quic:frames_processed": "transport:frames_processed",
    "quic:stream_data_moved": "transport:data_moved",
    "quic:key_updated": "security:key_updated",
    "quic:key_discarded": "security:key_discarded",
    "quic:recovery_parameters_set": "recovery:parameters_set",
    "quic:recovery_metrics_updated": "recovery:metrics_updated",
    "quic:congestion_state_updated": "recovery:congestion_state_updated",
    "quic:timer_updated": "recovery:loss_timer_updated",
    "quic:packet_lost": "recovery:packet_lost",
    "quic:marked_for_retransmit": "recovery:marked_for_retransmit",
    "quic:ecn_state_updated": "recovery:ecn_state_updated",
}
_FROM_V03: dict[str, str] = {old: new for new, old in _TO_V03.items()}
# Short aliases some callers use ("recovery:metrics_updated" is both a 0.3 name and
# what the issue calls the event; "connectivity:path_*" for multipath path events).
_FROM_V03["connectivity:connection_state_changed"] = "quic:connection_state_updated"


def canonical_name(name: str) -> str:
    """The draft-ietf-quic-qlog-quic-events name of an event given in either naming."""
    return _FROM_V03.get(name, name)


def v03_name(name: str) -> str:
    """The qlog 0.3 name of an event given in either naming."""
    return _TO_V03.get(canonical_name(name), name)


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _json(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), default=_default)


def _default(obj: object) -> object:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


class QuicLogger:
    """The qlog trace of one connection (or of an endpoint's unattributed events).

    ``sink`` is a path to write to, an open text file, or None to keep events in
    memory only (``events``; tests and the sim use that).  Times are
    milliseconds relative to the first event's ``now``.
    """

    __slots__ = (
        "_clock",
        "_closed",
        "_dropped",
        "_file",
        "_format",
        "_last_now",
        "_max_events",
        "_owns_file",
        "_reference",
        "events",
        "group_id",
        "title",
        "vantage",
        "wall_clock_start",
    )

    def __init__(self, sink: str | os.PathLike[str] | IO[str] | None = None, *,
                 vantage: Vantage = "unknown", fmt: QlogFormat = "seq", group_id: str = "",
                 title: str = "tquic", clock: Callable[[], float] = time.monotonic,
                 max_events: int = DEFAULT_MAX_EVENTS) -> None:
        if fmt not in ("seq", "0.3"):
            raise ValueError(f"qlog format must be 'seq' or '0.3', not {fmt!r}")
        self.vantage: Vantage = vantage
        self.group_id = group_id
        self.title = title
        self._format: QlogFormat = fmt
        self._clock = clock
        self._max_events = max_events
        self._dropped = 0
        self._reference: float | None = None
        self._last_now: float | None = None
        self._closed = False
        self.wall_clock_start = time.time()
        self.events: list[dict[str, Any]] = []
        self._owns_file = False
        self._file: IO[str] | None
        if sink is None:
            self._file = None
        elif isinstance(sink, str | os.PathLike):
            self._file = open(sink, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._owns_file = True
        else:
            self._file = sink
        if self._file is not None and fmt == "seq":
            self._file.write(RECORD_SEPARATOR + _json(self._seq_header()) + "\n")

    @property
    def format(self) -> QlogFormat:
        return self._format

    @property
    def dropped_events(self) -> int:
        return self._dropped

    # -- logging ----------------------------------------------------------------------

    def log(self, now: float, category_event: str, data: dict[str, Any]) -> None:
        """Record one event at engine time ``now`` (seconds)."""
        if self._closed:
            return
        if self._reference is None:
            self._reference = now
        self._last_now = now
        event = {
            "time": round((now - self._reference) * 1000.0, 3),
            "name": (canonical_name(category_event) if self._format == "seq"
                     else v03_name(category_event)),
            "data": data,
        }
        if self._format == "seq" and self._file is not None:
            self._file.write(RECORD_SEPARATOR + _json(event) + "\n")
            return
        if len(self.events) >= self._max_events:
            self._dropped += 1
            return
        self.events.append(event)

    def __call__(self, category_event: str, data: dict[str, Any]) -> None:
        """The ``QuicConfiguration.quic_logger`` hook: log at the latest known time."""
        now = self._last_now if self._last_now is not None else self._clock()
        self.log(now, category_event, data)

    # -- output -----------------------------------------------------------------------

    def _reference_time(self) -> dict[str, Any]:
        # The engine's clock is monotonic with an unknown epoch (main-schema "Timestamps").
        return {"clock_type": "monotonic", "epoch": "unknown",
                "wall_clock_time": _rfc3339(self.wall_clock_start)}

    def _seq_header(self) -> dict[str, Any]:
        common: dict[str, Any] = {"time_format": "relative_to_epoch",
                                  "reference_time": self._reference_time()}
        if self.group_id:
            common["group_id"] = self.group_id
        return {
            "file_schema": FILE_SCHEMA_SEQ,
            "serialization_format": SERIALIZATION_SEQ,
            "title": self.title,
            "trace": {
                "common_fields": common,
                "vantage_point": {"name": "tquic", "type": self.vantage},
                "event_schemas": [QUIC_EVENT_SCHEMA],
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole trace as one document: qlog 0.3 (the format qvis reads)."""
        common: dict[str, Any] = {
            "reference_time": round(self.wall_clock_start * 1000.0, 3),
            "time_format": "relative",
        }
        if self.group_id:
            common["ODCID"] = self.group_id
            common["group_id"] = self.group_id
        return {
            "qlog_format": "JSON",
            "qlog_version": "0.3",
            "title": self.title,
            "description": "",
            "traces": [{
                "common_fields": common,
                "vantage_point": {"name": "tquic", "type": self.vantage},
                "configuration": {"time_units": "ms"},
                "events": self.events,
            }],
        }

    def close(self) -> None:
        """Finish the file (0.3: write the buffered document); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._file is None:
            return
        try:
            if self._format == "0.3":
                json.dump(self.to_dict(), self._file, separators=(",", ":"), default=_default)
            self._file.flush()
        finally:
            if self._owns_file:
                self._file.close()


class QlogDirectory:
    """Makes one :class:`QuicLogger` per connection in a directory.

    File names are ``<group id>_<vantage>.sqlog`` (or ``.qlog`` in 0.3 mode),
    the group id being the connection's original destination CID in hex, as
    the qlog drafts suggest for grouping a connection's traces.
    """

    __slots__ = ("directory", "fmt")

    def __init__(self, directory: str | os.PathLike[str], fmt: QlogFormat = "seq") -> None:
        if fmt not in ("seq", "0.3"):
            raise ValueError(f"qlog format must be 'seq' or '0.3', not {fmt!r}")
        self.directory = os.fspath(directory)
        self.fmt: QlogFormat = fmt
        os.makedirs(self.directory, exist_ok=True)

    def create(self, group_id: bytes | str, vantage: Vantage) -> QuicLogger:
        gid = group_id.hex() if isinstance(group_id, bytes) else group_id
        suffix = ".sqlog" if self.fmt == "seq" else ".qlog"
        path = os.path.join(self.directory, f"{gid}_{vantage}{suffix}")
        return QuicLogger(path, vantage=vantage, fmt=self.fmt, group_id=gid,
                          title=f"tquic {vantage} {gid}")


def read_seq(text: str) -> list[dict[str, Any]]:
    """Parse a JSON-SEQ qlog (RFC 7464): the header record first, then the events."""
    records = []
    for chunk in text.split(RECORD_SEPARATOR):
        if chunk.strip():
            records.append(json.loads(chunk))
    return records


# -- helpers for the common event shapes (draft-ietf-quic-qlog-quic-events) ------------

def packet_event_data(packet_type: str, packet_number: int | None, length: int,
                      frames: list[dict[str, Any]] | None = None, *,
                      path_id: int | None = None, dcid: bytes | None = None,
                      scid: bytes | None = None) -> dict[str, Any]:
    """``data`` of quic:packet_sent / quic:packet_received (PacketHeader + RawInfo)."""
    header: dict[str, Any] = {"packet_type": packet_type}
    if packet_number is not None:
        header["packet_number"] = packet_number
    if dcid is not None:
        header["dcid"] = dcid.hex()
    if scid is not None:
        header["scid"] = scid.hex()
    data: dict[str, Any] = {"header": header, "raw": {"length": length}}
    if frames is not None:
        data["frames"] = frames
    if path_id is not None:
        data["path_id"] = path_id  # multipath extension field
    return data

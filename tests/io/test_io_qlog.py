"""qlog writer: JSON-SEQ records per draft-ietf-quic-qlog-main-schema, the 0.3 document
qvis loads, name translation between the two, bounded buffering."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tquic.qlog import (
    FILE_SCHEMA_SEQ,
    RECORD_SEPARATOR,
    QlogDirectory,
    QuicLogger,
    canonical_name,
    packet_event_data,
    read_seq,
    v03_name,
)


def _log_a_connection(logger: QuicLogger) -> None:
    logger.log(10.0, "quic:connection_started",
               {"local": {"ip_v4": "127.0.0.1", "port_v4": 1}, "remote": {}})
    logger.log(10.001, "quic:packet_sent",
               packet_event_data("initial", 0, 1200, [{"frame_type": "crypto"}], path_id=0))
    logger.log(10.050, "quic:packet_received", packet_event_data("handshake", 0, 900))
    logger.log(10.051, "quic:packets_acked", {"packet_number_space": "initial",
                                               "packet_numbers": [0]})
    logger.log(10.060, "recovery:metrics_updated", {"smoothed_rtt": 49.0, "cwnd": 14720})
    logger.log(10.2, "quic:packet_lost", {"header": {"packet_type": "1RTT",
                                                     "packet_number": 7}})
    logger.log(10.3, "quic:tuple_assigned", {"tuple_id": "p1"})


def test_seq_file_is_rs_prefixed_json_records_with_header_first(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlog"
    logger = QuicLogger(path, vantage="client", group_id="abcd")
    _log_a_connection(logger)
    logger.close()
    text = path.read_text()
    assert text.startswith(RECORD_SEPARATOR)
    # RFC 7464: every record is RS ... LF.
    chunks = text.split(RECORD_SEPARATOR)[1:]
    assert all(chunk.endswith("\n") for chunk in chunks)
    records = read_seq(text)
    header, events = records[0], records[1:]
    assert header["file_schema"] == FILE_SCHEMA_SEQ
    assert header["serialization_format"] == "application/qlog+json-seq"
    assert header["trace"]["vantage_point"]["type"] == "client"
    assert header["trace"]["common_fields"]["group_id"] == "abcd"
    assert header["trace"]["event_schemas"] == ["urn:ietf:params:qlog:events:quic"]
    assert [e["name"] for e in events] == [
        "quic:connection_started", "quic:packet_sent", "quic:packet_received",
        "quic:packets_acked", "quic:recovery_metrics_updated", "quic:packet_lost",
        "quic:tuple_assigned",
    ]
    # Times are milliseconds relative to the first event.
    assert events[0]["time"] == 0.0
    assert events[2]["time"] == pytest.approx(50.0)
    assert events[1]["data"]["header"] == {"packet_type": "initial", "packet_number": 0}
    assert events[1]["data"]["raw"] == {"length": 1200}


def test_seq_records_are_written_as_they_happen(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlog"
    logger = QuicLogger(path, vantage="server")
    logger.log(1.0, "quic:packet_sent", packet_event_data("1RTT", 5, 1452))
    assert logger.events == []  # streamed, not buffered
    logger.close()
    assert len(read_seq(path.read_text())) == 2


def test_v03_document_uses_the_names_qvis_knows(tmp_path: Path) -> None:
    path = tmp_path / "c.qlog"
    logger = QuicLogger(path, vantage="server", fmt="0.3", group_id="0102")
    _log_a_connection(logger)
    logger.close()
    doc = json.loads(path.read_text())
    assert doc["qlog_version"] == "0.3"
    assert doc["qlog_format"] == "JSON"
    trace = doc["traces"][0]
    assert trace["vantage_point"]["type"] == "server"
    assert trace["common_fields"]["ODCID"] == "0102"
    assert [e["name"] for e in trace["events"]] == [
        "connectivity:connection_started", "transport:packet_sent", "transport:packet_received",
        "transport:packets_acked", "recovery:metrics_updated", "recovery:packet_lost",
        "connectivity:path_assigned",
    ]
    assert all(set(e) == {"time", "name", "data"} for e in trace["events"])


def test_name_translation_is_a_bijection_on_known_names() -> None:
    assert canonical_name("recovery:metrics_updated") == "quic:recovery_metrics_updated"
    assert v03_name("quic:recovery_metrics_updated") == "recovery:metrics_updated"
    assert v03_name("transport:packet_sent") == "transport:packet_sent"
    assert canonical_name("quic:packet_sent") == "quic:packet_sent"
    assert canonical_name("tquic:custom") == "tquic:custom"  # unknown names pass through


def test_callable_hook_uses_latest_engine_time() -> None:
    logger = QuicLogger(None, clock=lambda: 100.0)
    logger("quic:packet_sent", {})  # before any log(): the clock
    logger.log(100.5, "quic:packet_received", {})
    logger("quic:packets_acked", {})
    assert [e["time"] for e in logger.events] == [0.0, 500.0, 500.0]


def test_bytes_in_data_are_hex_and_close_is_idempotent() -> None:
    sink = io.StringIO()
    logger = QuicLogger(sink, fmt="0.3")
    logger.log(0.0, "quic:connection_id_updated", {"new": b"\x01\x02", "seqs": (1, 2)})
    logger.close()
    logger.close()
    logger.log(1.0, "quic:packet_sent", {})  # ignored after close
    doc = json.loads(sink.getvalue())
    assert doc["traces"][0]["events"][0]["data"] == {"new": "0102", "seqs": [1, 2]}
    assert len(doc["traces"][0]["events"]) == 1


def test_buffered_events_are_bounded() -> None:
    logger = QuicLogger(None, fmt="0.3", max_events=3)
    for i in range(10):
        logger.log(float(i), "quic:packet_sent", {})
    assert len(logger.events) == 3
    assert logger.dropped_events == 7


def test_directory_names_files_by_group_and_vantage(tmp_path: Path) -> None:
    seq = QlogDirectory(tmp_path / "q")
    logger = seq.create(b"\xaa\xbb", "client")
    logger.log(0.0, "quic:packet_sent", {})
    logger.close()
    assert (tmp_path / "q" / "aabb_client.sqlog").exists()
    old = QlogDirectory(tmp_path / "q", fmt="0.3")
    logger = old.create("ccdd", "server")
    logger.close()
    assert json.loads((tmp_path / "q" / "ccdd_server.qlog").read_text())["qlog_version"] == "0.3"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="qlog format"):
        QuicLogger(None, fmt="0.4")  # type: ignore[arg-type]

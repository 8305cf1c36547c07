"""qlog from the engine (draft-ietf-quic-qlog-quic-events): a transfer's trace has
packet_sent/received, packets_acked, packet_lost, recovery_metrics_updated, key and
closing events with fields that match what happened on the wire."""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine_certs import server_config
from engine_fake_tls import fake_tls_factory
from engine_pairs import handshake_pair, make_pair

from tquic.core.config import QuicConfiguration
from tquic.core.events import StreamDataReceived
from tquic.qlog import QuicLogger
from tquic.testing.engines import EnginePair


def _pair(**kwargs: Any) -> tuple[EnginePair, QuicLogger, QuicLogger]:
    client_log = QuicLogger(vantage="client")
    server_log = QuicLogger(vantage="server")
    loop = handshake_pair(
        client_config=QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                        verify_peer=False, quic_logger=client_log),
        server_config=server_config(quic_logger=server_log), **kwargs)
    return loop, client_log, server_log


def _named(log: QuicLogger, name: str) -> list[dict[str, Any]]:
    return [e["data"] for e in log.events if e["name"] == name]


def _transfer(loop: EnginePair, size: int) -> None:
    """Send ``size`` bytes on a new stream; return once the final ACKs are in."""
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"q" * size, end_stream=True)
    loop.run_until(lambda: any(isinstance(e, StreamDataReceived) and e.end_stream
                               and e.stream_id == sid for e in loop.server_events), timeout=30)
    loop.advance(0.2)


def test_transfer_trace_has_packets_acks_and_metrics_with_sane_fields() -> None:
    loop, clog, slog = _pair()
    _transfer(loop, 200_000)
    sent = _named(clog, "quic:packet_sent")
    types = Counter(e["header"]["packet_type"] for e in sent)
    assert types["initial"] >= 1 and types["handshake"] >= 1 and types["1RTT"] >= 100
    # packet numbers strictly increase within each packet-number space
    for ptype in ("initial", "handshake", "1RTT"):
        pns = [e["header"]["packet_number"] for e in sent if e["header"]["packet_type"] == ptype]
        assert pns == sorted(set(pns))
    assert all(e["raw"]["length"] > 0 and e["path_id"] == 0 for e in sent)
    # the stream frames sent cover the whole stream exactly once (no loss here)
    stream_bytes = sum(f["length"] for e in sent for f in e["frames"]
                       if f["frame_type"] == "stream")
    assert stream_bytes == 200_000
    # every 1-RTT packet the client sent was received by the server, same numbers
    one_rtt_sent = {e["header"]["packet_number"] for e in sent
                    if e["header"]["packet_type"] == "1RTT"}
    received = _named(slog, "quic:packet_received")
    one_rtt_recv = {e["header"]["packet_number"] for e in received
                    if e["header"]["packet_type"] == "1RTT"}
    assert one_rtt_recv == one_rtt_sent
    recv_stream = sum(f["length"] for e in received for f in e["frames"]
                      if f["frame_type"] == "stream")
    assert recv_stream == 200_000
    acked = {pn for e in _named(clog, "quic:packets_acked")
             if "packet_number_space" not in e for pn in e["packet_numbers"]}
    assert len(acked) >= 0.9 * len(one_rtt_sent) and acked <= one_rtt_sent
    metrics = _named(clog, "quic:recovery_metrics_updated")
    srtt = [m["smoothed_rtt"] for m in metrics if "smoothed_rtt" in m]
    assert srtt and 15.0 <= srtt[-1] <= 60.0  # 2 x 10 ms one-way delay, plus ack delay
    assert any(m.get("congestion_window", 0) > 0 for m in metrics)
    assert not _named(clog, "quic:packet_lost")
    times = [e["time"] for e in clog.events]
    assert times == sorted(times) and times[-1] <= loop.now * 1000.0 + 1e-6


def test_losses_are_logged_for_the_packets_that_were_dropped() -> None:
    dropped_sizes: list[int] = []

    def drop(index: int, data: bytes) -> bool:
        # drop a few full-size 1-RTT datagrams from the client once data flows
        if index > 30 and not data[0] & 0x80 and len(data) > 1000 and len(dropped_sizes) < 3:
            dropped_sizes.append(len(data))
            return True
        return False

    loop, clog, _ = _pair(drop=drop)
    _transfer(loop, 300_000)
    assert len(dropped_sizes) == 3
    lost = _named(clog, "quic:packet_lost")
    sent_pns = {e["header"]["packet_number"] for e in _named(clog, "quic:packet_sent")
                if e["header"]["packet_type"] == "1RTT"}
    assert len(lost) >= 3
    assert all(e["header"]["packet_type"] == "1RTT" and e["header"]["packet_number"] in sent_pns
               and e["trigger"] in ("reordering_threshold", "time_threshold") for e in lost)


def test_keys_installed_discarded_and_updated_are_logged() -> None:
    loop, clog, slog = _pair()
    key_types = {e["key_type"] for e in _named(clog, "quic:key_updated")}
    assert {"client_initial_secret", "server_initial_secret", "client_handshake_secret",
            "server_handshake_secret", "client_1rtt_secret", "server_1rtt_secret"} <= key_types
    discarded = {e["key_type"] for e in _named(clog, "quic:key_discarded")}
    assert {"client_initial_secret", "client_handshake_secret"} <= discarded
    _transfer(loop, 20_000)  # a packet of the current phase acknowledged (RFC 9001 §6.1)
    loop.client.request_key_update()
    _transfer(loop, 20_000)
    local = [e for e in _named(clog, "quic:key_updated") if e["trigger"] == "local_update"]
    remote = [e for e in _named(slog, "quic:key_updated") if e["trigger"] == "remote_update"]
    assert local and local[0]["key_phase"] == 1
    assert remote and remote[0]["key_phase"] == 1
    bits = [e["header"]["key_phase_bit"] for e in _named(slog, "quic:packet_received")
            if e["header"]["packet_type"] == "1RTT"]
    assert bits[0] is False and bits[-1] is True


def test_close_is_logged_by_both_ends_with_initiator_and_code() -> None:
    loop, clog, slog = _pair()
    loop.client.close(error_code=7, reason="bye")
    loop.run_until(lambda: bool(_named(slog, "quic:connection_closed")), timeout=5)
    (mine,) = _named(clog, "quic:connection_closed")
    (theirs,) = _named(slog, "quic:connection_closed")
    assert mine["initiator"] == "local" and mine["error_code"] == 7
    assert mine["trigger"] == "application" and mine["reason"] == "bye"
    assert theirs["initiator"] == "remote" and theirs["error_code"] == 7
    assert _named(clog, "quic:connection_state_updated") == [{"new": "handshake_complete"}]


def _close_frames(log: QuicLogger, name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e["header"]["packet_type"], f) for e in _named(log, name)
            for f in e["frames"] if f["frame_type"] == "connection_close"]


def test_the_packet_carrying_connection_close_lists_it_with_code_and_reason() -> None:
    loop, clog, slog = _pair()
    loop.client.close(error_code=7, reason="bye")
    loop.run_until(lambda: bool(_named(slog, "quic:connection_closed")), timeout=5)
    want = {"frame_type": "connection_close", "error_space": "application",
            "error_code": 7, "reason": "bye"}
    sent = _close_frames(clog, "quic:packet_sent")
    assert sent and all(ptype == "1RTT" and frame == want for ptype, frame in sent)
    assert ("1RTT", want) in _close_frames(slog, "quic:packet_received")


def test_a_close_during_the_handshake_is_logged_as_the_transport_close_sent() -> None:
    """RFC 9000 §10.2.3: an application close in an Initial or Handshake packet goes
    as a transport CONNECTION_CLOSE with APPLICATION_ERROR (0x0c), no reason."""
    client_log = QuicLogger(vantage="client")
    loop = make_pair(QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                       verify_peer=False, quic_logger=client_log),
                     tls_factory=fake_tls_factory)
    loop.client.close(error_code=7, reason="bye")
    loop.run_until(lambda: loop.client.is_closed, timeout=5)
    sent = _close_frames(client_log, "quic:packet_sent")
    assert ("initial", {"frame_type": "connection_close", "error_space": "transport",
                        "error_code": 0x0C, "reason": "", "trigger_frame_type": 0}) in sent


def test_without_a_logger_the_engine_keeps_no_qlog_state() -> None:
    loop = handshake_pair()
    client: Any = loop.client
    assert not client.qlog_enabled and not loop.server.qlog_enabled


def test_a_plain_callable_hook_receives_name_and_data() -> None:
    seen: list[str] = []

    def hook(name: str, data: dict[str, Any]) -> None:
        seen.append(name)

    handshake_pair(client_config=QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                                   verify_peer=False, quic_logger=hook))
    assert "quic:packet_sent" in seen and "quic:packet_received" in seen


def test_untimed_events_never_precede_the_connections_first_timed_event() -> None:
    # The sim and io endpoints log connection_started at the engine's ``now`` first;
    # key installs at connect() have no ``now`` of their own and must not go back in time.
    from engine_pairs import CLIENT_PATH

    from tquic.core.connection import QuicConnection

    log = QuicLogger(vantage="client")
    log.log(5.0, "quic:connection_started", {})
    client = QuicConnection(QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                              verify_peer=False, quic_logger=log))
    client.connect(CLIENT_PATH, 5.0)
    assert client.datagrams_to_send(5.0)
    names = [e["name"] for e in log.events]
    assert names[0] == "quic:connection_started" and "quic:key_updated" in names
    assert all(e["time"] == 0.0 for e in log.events)


def test_transport_parameters_of_both_ends_are_logged() -> None:
    loop, clog, slog = _pair()
    params = {e["owner"]: e for e in _named(clog, "quic:parameters_set")}
    assert set(params) == {"local", "remote"}
    server: Any = loop.server
    assert params["remote"]["initial_max_data"] == server.configuration.initial_max_data
    assert params["remote"]["initial_source_connection_id"] == server.local_transport_parameters.initial_source_connection_id.hex()
    assert params["local"]["chosen_version"] == "00000001"
    server_view = {e["owner"]: e for e in _named(slog, "quic:parameters_set")}
    assert server_view["remote"]["max_idle_timeout"] == params["local"]["max_idle_timeout"]

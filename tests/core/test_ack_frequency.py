"""Sending ACK_FREQUENCY and IMMEDIATE_ACK (draft-ietf-quic-ack-frequency): fewer ACKs
in bulk transfer when the peer advertised min_ack_delay, none of it otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from engine_certs import server_config
from engine_pairs import handshake_pair

from tquic.core.ack_frequency import AckFrequencySender
from tquic.core.config import QuicConfiguration
from tquic.core.events import StreamDataReceived
from tquic.qlog import QuicLogger
from tquic.testing.engines import CLIENT_ADDR, EnginePair

MSS = 1200


def test_desired_threshold_is_an_eighth_of_the_window_capped_at_ten() -> None:
    sender = AckFrequencySender(peer_min_ack_delay_us=1000, peer_max_ack_delay_ms=25)
    assert sender.desired(100 * MSS, MSS, 0.040)[0] == 10
    assert sender.desired(24 * MSS, MSS, 0.040)[0] == 3
    assert sender.desired(10 * MSS, MSS, 0.040)[0] == 1


@pytest.mark.parametrize(("srtt", "expected_us"), [
    (0.040, 10_000),  # srtt / 4
    (0.002, 1_000),  # not below the peer's min_ack_delay
    (1.000, 25_000),  # not above the peer's max_ack_delay
])
def test_requested_delay_is_a_quarter_rtt_within_the_peers_bounds(srtt: float,
                                                                   expected_us: int) -> None:
    sender = AckFrequencySender(peer_min_ack_delay_us=1000, peer_max_ack_delay_ms=25)
    assert sender.desired(100 * MSS, MSS, srtt)[1] == expected_us


def test_frames_go_out_once_per_rtt_only_on_relevant_changes() -> None:
    sender = AckFrequencySender(peer_min_ack_delay_us=1000, peer_max_ack_delay_ms=25)
    first = sender.update(0.0, 100 * MSS, MSS, 0.040)
    assert first is not None and first.sequence_number == 0
    assert (first.ack_eliciting_threshold, first.requested_max_ack_delay,
            first.reordering_threshold) == (10, 10_000, 3)
    assert sender.update(0.01, 20 * MSS, MSS, 0.040) is None  # within one RTT
    assert sender.update(0.05, 100 * MSS, MSS, 0.042) is None  # nothing relevant changed
    second = sender.update(0.10, 20 * MSS, MSS, 0.040)  # window shrank
    assert second is not None and second.sequence_number == 1
    assert second.ack_eliciting_threshold == 2


def _pair(*, client_min: float | None, server_min: float | None, request: bool = True,
          logger: QuicLogger | None = None, **kwargs: Any) -> EnginePair:
    big = {"initial_max_data": 8 << 20, "max_data": 16 << 20,
           "initial_max_stream_data": 8 << 20, "max_stream_data": 16 << 20}
    return handshake_pair(
        client_config=QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                        verify_peer=False, min_ack_delay=client_min,
                                        request_ack_frequency=request, quic_logger=logger,
                                        **big),
        server_config=server_config(min_ack_delay=server_min, **big), **kwargs)


def _bulk(loop: EnginePair, size: int) -> int:
    """Client -> server transfer; the number of datagrams the server sent meanwhile."""
    before = loop.links[CLIENT_ADDR].count
    server_sent = 0
    orig = loop.server.datagrams_to_send

    def counting(now: float) -> list[Any]:
        nonlocal server_sent
        out = orig(now)
        server_sent += len(out)
        return out

    loop.server.datagrams_to_send = counting  # type: ignore[method-assign]
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"b" * size, end_stream=True)
    loop.run_until(lambda: any(isinstance(e, StreamDataReceived) and e.end_stream
                               for e in loop.server_events), timeout=30)
    assert loop.links[CLIENT_ADDR].count > before
    return server_sent


def test_bulk_transfer_with_ack_frequency_cuts_the_receivers_acks() -> None:
    thinned = _pair(client_min=0.001, server_min=0.001)
    acks_thinned = _bulk(thinned, 4 << 20)
    server: Any = thinned.server
    assert server.paths.primary.space.ack_tracker.ack_eliciting_threshold > 1
    plain = _pair(client_min=0.001, server_min=0.001, request=False)
    acks_plain = _bulk(plain, 4 << 20)
    assert plain.server.paths.primary.space.ack_tracker.ack_eliciting_threshold == 1  # type: ignore[attr-defined]
    # the in-memory loop delivers each burst at once (one ACK per burst even without
    # ACK_FREQUENCY), so the gain here is smaller than behind a real bottleneck
    assert acks_thinned * 3 <= acks_plain * 2, (acks_thinned, acks_plain)


def test_nothing_is_requested_from_a_peer_without_min_ack_delay() -> None:
    loop = _pair(client_min=0.001, server_min=None)
    _bulk(loop, 1 << 20)
    client: Any = loop.client
    server: Any = loop.server
    assert not client.ack_frequency_active
    assert server.paths.primary.space.ack_tracker.ack_eliciting_threshold == 1
    assert not server.is_closed


def test_a_peer_that_advertised_min_ack_delay_gets_no_ack_frequency_unless_we_did() -> None:
    """picoquic closes with FRAME_ENCODING_ERROR on an ACK_FREQUENCY it did not see
    negotiated both ways: the server advertises min_ack_delay, the client (the data
    sender here) does not, so the client sends none and the server keeps acking
    every other packet."""
    loop = _pair(client_min=None, server_min=0.001)
    _bulk(loop, 4 << 20)
    client: Any = loop.client
    server: Any = loop.server
    assert not client.ack_frequency_active
    assert server.paths.primary.space.ack_tracker.ack_eliciting_threshold == 1
    assert not server.is_closed


def test_min_ack_delay_is_advertised_by_default() -> None:
    assert QuicConfiguration(is_client=True).min_ack_delay is not None
    loop = _pair(client_min=0.001, server_min=0.001)
    _bulk(loop, 4 << 20)
    server: Any = loop.server
    assert server.paths.primary.space.ack_tracker.ack_eliciting_threshold > 1


def test_pto_probes_carry_immediate_ack() -> None:
    log = QuicLogger(vantage="client")
    state = {"blackhole": False}

    def drop(_index: int, data: bytes) -> bool:
        return state["blackhole"]

    loop = _pair(client_min=0.001, server_min=0.001, logger=log, drop=drop)
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"x" * 5000)
    loop.advance(0.2)
    state["blackhole"] = True  # everything is lost: the client's PTO fires
    sent_before = len(log.events)
    loop.client.send_stream_data(sid, b"y" * 3000)
    loop.advance(2.0)
    frames = [f["frame_type"] for e in log.events[sent_before:]
              if e["name"] == "quic:packet_sent" for f in e["data"]["frames"]]
    assert "immediate_ack" in frames
    state["blackhole"] = False
    loop.client.send_stream_data(sid, b"", end_stream=True)
    loop.run_until(lambda: any(isinstance(e, StreamDataReceived) and e.end_stream
                               for e in loop.server_events), timeout=10)


def test_the_component_alone_decides_and_returns_frames() -> None:
    """AckFrequency as an owned component: told what happened, it returns the frame
    to queue; inactive unless both sides advertised min_ack_delay."""
    from types import SimpleNamespace

    from tquic.core.ack_frequency import AckFrequency
    from tquic.wire.frame_types import AckFrequencyFrame, ImmediateAckFrame
    from tquic.wire.params import TransportParameters

    recovery = SimpleNamespace(controller=SimpleNamespace(congestion_window=80 * MSS),
                               rtt=SimpleNamespace(smoothed_rtt=0.04))
    path0: Any = SimpleNamespace(path_id=0, recovery=recovery, max_datagram_size=MSS)
    path1: Any = SimpleNamespace(path_id=1, recovery=recovery, max_datagram_size=MSS)
    ours = QuicConfiguration(is_client=True, min_ack_delay=0.001)
    peer = TransportParameters(min_ack_delay=1000)

    idle = AckFrequency()
    idle.start(ours, TransportParameters())  # the peer did not advertise it
    assert not idle.active and idle.on_probe() is None and idle.on_ack(path0, 1.0) is None

    component = AckFrequency()
    component.start(ours, peer)
    assert component.active
    assert isinstance(component.on_probe(), ImmediateAckFrame)
    assert component.on_ack(path1, 1.0) is None  # only path 0 sets the rate
    frame = component.on_ack(path0, 1.0)
    assert isinstance(frame, AckFrequencyFrame)
    assert frame.ack_eliciting_threshold == 10 and frame.requested_max_ack_delay == 10_000
    assert component.on_ack(path0, 1.01) is None  # at most one per smoothed RTT

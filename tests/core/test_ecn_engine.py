"""ECN end to end between two engines in memory (RFC 9000 §13.4, RFC 9002 §7.1).

The in-memory loops carry each datagram's codepoint as its sender set it
(``ecn_codepoint``); a network function may bleach or CE-mark it on the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from engine_pairs import LINK_A, LINK_B, handshake_pair, inject, mp_pair

from tquic.core.conn_base import ConnState
from tquic.core.connection import QuicConnection
from tquic.core.frame_handlers import FrameHandlers
from tquic.paths.ecn import ECN_CE, ECN_ECT0, ECN_ECT1, ECN_NOT_ECT, EcnState
from tquic.paths.sent_packets import SpaceId
from tquic.testing.engines import EnginePair, Link
from tquic.wire.frame_types import FrameType
from tquic.wire.frames import AckFrame, encode_frames


def _transfer(loop: EnginePair, size: int = 200_000, max_time: float = 10.0) -> None:
    client, server = loop.client, loop.server
    sid = client.open_stream()
    client.send_stream_data(sid, b"x" * size, end_stream=True)
    got = [0]

    def done() -> bool:
        for event in loop.server_events:
            data = getattr(event, "data", None)
            if data is not None and getattr(event, "stream_id", None) == sid:
                got[0] += len(data)
        loop.server_events.clear()
        return got[0] >= size

    loop.run_until(done, timeout=max_time)
    # Let the last ACKs land so the counts on both sides are final.
    loop.advance(0.2)
    assert server is loop.server


def _recorder(sent: list[int], network: Callable[[int, int], int] | None = None
              ) -> Callable[[int, int], int]:
    """A link ECN rule that records the codepoint each datagram was sent with, then
    applies ``network`` (None: the marks arrive as sent)."""
    def rule(index: int, codepoint: int) -> int:
        sent.append(codepoint)
        return network(index, codepoint) if network is not None else codepoint
    return rule


def _ecn(conn: QuicConnection) -> EcnState:
    return conn.paths.primary.recovery.ecn.state


def test_ack_ecn_counts_match_the_ect0_marks_sent() -> None:
    sent: list[int] = []
    loop = handshake_pair(ecn=_recorder(sent))
    _transfer(loop)
    c_path, s_path = loop.client.paths.primary, loop.server.paths.primary
    assert _ecn(loop.client) is EcnState.CAPABLE and _ecn(loop.server) is EcnState.CAPABLE
    # RFC 9000 §13.4.1: each side counted every marked 1-RTT packet of the other.
    client_marked = c_path.recovery.ecn.marked_sent(SpaceId.APPLICATION)
    server_marked = s_path.recovery.ecn.marked_sent(SpaceId.APPLICATION)
    assert client_marked[0] > 120 and client_marked[1] == 0
    assert s_path.space.ack_tracker.ecn_counts == (client_marked[0], 0, 0)
    assert c_path.space.ack_tracker.ecn_counts == (server_marked[0], 0, 0)
    # ... and the peer's last ACK_ECN reported that much (modulo its final ACK).
    reported = c_path.recovery.ecn.peer_counts(SpaceId.APPLICATION)
    assert reported[1:] == (0, 0) and client_marked[0] - 3 <= reported[0] <= client_marked[0]
    assert set(sent) == {ECN_ECT0}


def test_bleaching_network_fails_validation_then_marks_stop_without_congestion_response(
        ) -> None:
    sent: list[int] = []
    loop = handshake_pair(ecn=_recorder(sent, lambda _i, _cp: ECN_NOT_ECT))
    client = loop.client
    recovery = client.paths.primary.recovery
    # RFC 9000 §13.4.2.1: marked packets acknowledged without ECN counts.
    assert _ecn(client) is EcnState.FAILED and _ecn(loop.server) is EcnState.FAILED
    assert "without ECN counts" in recovery.ecn.failure_reason
    first_unmarked = sent.index(ECN_NOT_ECT)
    _transfer(loop)
    assert first_unmarked < 10  # failed within the first round trip
    assert set(sent[first_unmarked:]) == {ECN_NOT_ECT}  # marks stopped for good
    assert client.ecn_codepoint(client.paths.primary.network_path) == ECN_NOT_ECT
    # No loss, so no congestion event either: failing ECN is not a congestion signal.
    assert recovery.packets_lost == 0
    assert recovery.controller.congestion_events == 0  # type: ignore[attr-defined]


def test_ce_marks_reduce_cwnd_without_loss_at_most_once_per_round_trip() -> None:
    ce_window = [0.0, 0.0]
    loop_ref: list[EnginePair] = []

    def network(_index: int, cp: int) -> int:
        now = loop_ref[0].now if loop_ref else 0.0
        return ECN_CE if cp and ce_window[0] <= now < ce_window[1] else cp

    loop = handshake_pair(ecn=network)
    loop_ref.append(loop)
    recovery = loop.client.paths.primary.recovery
    controller = recovery.controller
    _transfer(loop, 300_000)
    assert controller.congestion_events == 0  # type: ignore[attr-defined]
    cwnd_before = controller.congestion_window
    rtt = recovery.rtt.smoothed_rtt
    # CE-mark everything for five round trips.
    ce_window[:] = [loop.now, loop.now + 5 * rtt]
    _transfer(loop, 300_000)
    events = controller.congestion_events  # type: ignore[attr-defined]
    assert recovery.packets_lost == 0
    assert controller.congestion_window < cwnd_before
    # RFC 9002 §7.1/§7.3.2: one reaction per round trip, not one per ACK_ECN.
    assert 1 <= events <= 7, events
    reported_ce = recovery.ecn.peer_counts(SpaceId.APPLICATION)[2]
    assert reported_ce > 2 * events  # many CE marks, few reductions
    assert _ecn(loop.client) is EcnState.CAPABLE


def test_hostile_ack_ecn_with_decreasing_counts_fails_validation_not_the_connection() -> None:
    loop = handshake_pair()
    _transfer(loop, 50_000)
    client = loop.client
    ecn = client.paths.primary.recovery.ecn
    assert ecn.state is EcnState.CAPABLE
    # The client sends more; the server never sees it, and a forged ACK_ECN for all of
    # it reports counts far below what was reported before.
    sid = client.open_stream()
    client.send_stream_data(sid, b"y" * 5000, end_stream=True)
    assert client.datagrams_to_send(loop.now)
    largest = client.paths.primary.space.next_pn - 1
    inject(loop, encode_frames((AckFrame(((0, largest),), 0, (1, 0, 0)),)),
                to_server=False)
    assert ecn.state is EcnState.FAILED
    assert ecn.failure_reason == "ECN counts decreased"
    assert not client.is_closed and client.state < ConnState.CLOSING  # still open: only ECN is off
    assert client.ecn_codepoint(client.paths.primary.network_path) == ECN_NOT_ECT


def test_ect1_remarked_counts_fail_validation() -> None:
    # The network rewrites ECT(0) to ECT(1): the counts land in the wrong column
    # (RFC 9000 §13.4.2.1: remarking is detected per codepoint).
    loop = handshake_pair(ecn=lambda _i, cp: ECN_ECT1 if cp == ECN_ECT0 else cp)
    assert _ecn(loop.client) is EcnState.FAILED
    assert _ecn(loop.server) is EcnState.FAILED


def test_prague_marks_ect1_and_validates() -> None:
    from engine_certs import server_config

    from tquic.core.config import QuicConfiguration

    cc = QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                           congestion_control="prague")
    loop = handshake_pair(client_config=cc, server_config=server_config())
    _transfer(loop, 100_000)
    client = loop.client
    assert client.ecn_codepoint(client.paths.primary.network_path) == ECN_ECT1
    assert _ecn(client) is EcnState.CAPABLE
    counts = loop.server.paths.primary.space.ack_tracker.ecn_counts
    assert counts is not None and counts[0] == 0 and counts[1] > 50


def test_multipath_counts_come_back_per_path_in_path_ack_ecn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    links = {LINK_A: Link(delay=0.01, rate=1_000_000),
             LINK_B: Link(delay=0.015, rate=1_000_000,
                          ecn=lambda n, cp: ECN_CE if cp and n % 4 == 0 else cp)}
    loop = mp_pair(links=links, client_kwargs={"scheduler": "roundrobin"})
    client, server = loop.client, loop.server
    loop.run_until(lambda: client.can_open_path, timeout=2)
    assert client.add_path(LINK_B, None, loop.now) == 1
    loop.run_until(lambda: (p := server.paths.get(1)) is not None and p.validated, timeout=2)
    seen: list[tuple[int, int, tuple[int, int, int] | None]] = []
    process_ack = FrameHandlers.process_ack

    def recording(self: FrameHandlers, target: Any, ranges: Any, ack_delay: int,
                  ecn: tuple[int, int, int] | None, frame_type: int, now: float) -> None:
        if target is client.paths.get(target.path_id):  # the client's ACK processing
            seen.append((target.path_id, frame_type, ecn))
        process_ack(self, target, ranges, ack_delay, ecn, frame_type, now)

    monkeypatch.setattr(FrameHandlers, "process_ack", recording)
    payload = hashlib.sha256(b"ecn").digest() * 20_000
    sid = client.open_stream()
    client.send_stream_data(sid, payload, end_stream=True)
    loop.run_until(lambda: loop.received(sid)[1], timeout=20)
    loop.advance(0.2)
    path_a, path_b = server.paths.get(0), server.paths.get(1)
    assert path_a is not None and path_b is not None
    counts_a = path_a.space.ack_tracker.ecn_counts
    counts_b = path_b.space.ack_tracker.ecn_counts
    # Per-path packet-number spaces keep per-path counts: only link B marks CE.
    assert counts_a is not None and counts_a[2] == 0 and counts_a[0] > 50
    assert counts_b is not None and counts_b[2] >= 5 and counts_b[0] > 10
    # The client learnt each path's counts from that path's (PATH_)ACK_ECN.
    ecn_a = client.paths.get(0).recovery.ecn  # type: ignore[union-attr]
    ecn_b = client.paths.get(1).recovery.ecn  # type: ignore[union-attr]
    assert ecn_a.peer_counts(SpaceId.APPLICATION)[2] == 0
    assert ecn_b.peer_counts(SpaceId.APPLICATION)[2] >= 3
    assert ecn_a.state is EcnState.CAPABLE and ecn_b.state is EcnState.CAPABLE
    # Path 1's counts travelled in PATH_ACK_ECN frames (type 0x3f) naming path 1.
    path1 = [(ftype, ecn) for pid, ftype, ecn in seen if pid == 1]
    assert path1 and all(ftype == FrameType.PATH_ACK_ECN and ecn is not None
                         for ftype, ecn in path1[-3:])
    assert max(ecn[2] for ftype, ecn in path1 if ecn is not None) >= 3


def test_migration_retests_ecn_on_the_new_path_without_stale_ce() -> None:
    from engine_pairs import CLIENT_PATH

    from tquic.paths.network_path import NetworkPath

    # The old path CE-marks half the time; the new one marks nothing.
    loop = handshake_pair(ecn=lambda i, cp: ECN_CE if cp and i % 2 else cp)
    _transfer(loop, 100_000)
    client = loop.client
    old = client.paths.primary.recovery
    assert old.ecn.state is EcnState.CAPABLE and old.ecn.peer_counts(SpaceId.APPLICATION)[2] > 0
    new_local = ("10.9.9.9", 4433)
    loop.links[new_local] = Link()  # no ECN rule: the marks arrive as sent
    client.migrate(NetworkPath(new_local, CLIENT_PATH.remote), loop.now)
    new = client.paths.primary.recovery
    # RFC 9000 §13.4.2: a new path is validated again, from the old counts as baseline.
    assert new is not old and new.ecn.state is EcnState.TESTING
    _transfer(loop, 100_000)
    assert new.ecn.state is EcnState.CAPABLE
    # The CE the old path collected is not taken for congestion on the new one.
    assert new.controller.congestion_events == 0  # type: ignore[attr-defined]


def test_qlog_reports_ecn_state_changes() -> None:
    from engine_certs import server_config

    from tquic.core.config import QuicConfiguration

    events: list[tuple[str, dict[str, object]]] = []
    cc = QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                           quic_logger=lambda name, data: events.append((name, data)))
    handshake_pair(client_config=cc, server_config=server_config(),
                   ecn=lambda _i, _cp: ECN_NOT_ECT)
    changes = [data for name, data in events if name == "quic:ecn_state_updated"]
    # qlog quic-events "ecn_state_updated" (RFC 9000 Appendix A.4 states).
    assert changes == [{"old": "testing", "new": "failed", "path_id": 0}]


def test_ack_ecn_and_path_ack_ecn_are_written_on_the_fast_path_byte_exact() -> None:
    from tquic.core.ack_writer import AckWriter
    from tquic.paths.ack_tracker import AckTracker
    from tquic.paths.path import PacketSpace, SpaceKind
    from tquic.wire.frames import PathAckFrame, parse_frames

    loop = handshake_pair()
    tracker = AckTracker()
    marks = {0: ECN_ECT0, 1: ECN_ECT0, 2: ECN_CE, 5: ECN_ECT1, 6: ECN_NOT_ECT, 70: ECN_ECT0}
    for pn, ecn in marks.items():
        tracker.on_packet_received(pn, 1.0, True, ecn)
    space = PacketSpace(SpaceKind.APPLICATION, tracker, 3)
    for path_id in (None, 3):
        built = AckWriter(loop.client.configuration.ack_delay_exponent).frame(
            space, 1.0, path_id=path_id)
        assert built is not None
        data, largest = built
        assert largest == 70
        (frame,) = parse_frames(data)
        ranges, _ = tracker.build_ack_ranges(1.0)
        if path_id is None:
            assert data[0] == 0x03 and isinstance(frame, AckFrame)
            expected = encode_frames((AckFrame(ranges, frame.ack_delay, (3, 1, 1)),))
        else:
            assert data[0] == 0x3F and isinstance(frame, PathAckFrame)
            expected = encode_frames((PathAckFrame(3, ranges, frame.ack_delay, (3, 1, 1)),))
        assert frame.ecn == (3, 1, 1) and frame.ranges == ranges
        assert data == expected

"""PathRecovery against RFC 9002 §5-§7 and Appendix A (explicit ``now`` everywhere)."""

from __future__ import annotations

import time

import pytest

from tquic.cc import create_controller
from tquic.cc.base import AckedPacket
from tquic.cc.newreno import NewReno
from tquic.paths.recovery import PathRecovery, SentPacket, SpaceId
from tquic.wire.errors import QuicError, TransportErrorCode

MDS = 1200
APP = SpaceId.APPLICATION
INITIAL = SpaceId.INITIAL
HANDSHAKE = SpaceId.HANDSHAKE


def make(*, is_client: bool = False, path_id: int = 0, confirmed: bool = True) -> PathRecovery:
    r = PathRecovery(create_controller("newreno", MDS), MDS, is_client=is_client, path_id=path_id)
    r.handshake_confirmed = confirmed
    return r


def send(
    r: PathRecovery,
    pn: int,
    now: float,
    space: SpaceId = APP,
    *,
    size: int = MDS,
    ack_eliciting: bool = True,
    in_flight: bool = True,
) -> SentPacket:
    packet = SentPacket(pn, 0.0, size, ack_eliciting, in_flight, space, [f"frame{pn}"])
    r.on_packet_sent(packet, now)
    return packet


def pns(packets: list[SentPacket]) -> list[int]:
    return [p.packet_number for p in packets]


def with_rtt_sample(r: PathRecovery, space: SpaceId = APP) -> None:
    """pn 0 sent at t=0, acknowledged at t=0.1: smoothed 0.1, rttvar 0.05."""
    send(r, 0, 0.0, space)
    outcome = r.on_ack_received(space, ((0, 0),), 0.0, 0.1)
    assert outcome.rtt_sampled


# -- RTT sampling ---------------------------------------------------------------------


def test_ack_produces_rtt_sample_from_largest_newly_acked() -> None:
    r = make()
    send(r, 0, 1.0)
    send(r, 1, 1.2)
    outcome = r.on_ack_received(APP, ((0, 1),), 0.0, 1.25)
    assert outcome.rtt_sampled
    assert pns(outcome.acked) == [0, 1]
    assert r.rtt.latest_rtt == pytest.approx(0.05)
    assert r.first_rtt_sample_time == 1.25
    assert r.bytes_in_flight == 0


def test_no_rtt_sample_when_largest_not_newly_acked_or_only_non_eliciting() -> None:
    r = make()
    send(r, 0, 0.0)
    send(r, 1, 0.0, ack_eliciting=False, in_flight=False)
    only_non_eliciting = r.on_ack_received(APP, ((1, 1),), 0.0, 0.05)
    assert pns(only_non_eliciting.acked) == [1]
    assert not only_non_eliciting.rtt_sampled and not r.rtt.has_sample
    send(r, 2, 0.01)
    assert r.on_ack_received(APP, ((2, 2),), 0.0, 0.1).rtt_sampled
    # Largest (2) already acknowledged: acking 0 now gives no sample.
    outcome = r.on_ack_received(APP, ((2, 2), (0, 0)), 0.0, 0.105)
    assert pns(outcome.acked) == [0]
    assert not outcome.rtt_sampled
    assert r.rtt.latest_rtt == pytest.approx(0.09)


def test_initial_space_ignores_ack_delay() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, INITIAL)
    r.on_ack_received(INITIAL, ((0, 0),), 0.0, 0.1)
    send(r, 1, 1.0, INITIAL)
    r.on_ack_received(INITIAL, ((1, 1),), 0.05, 1.2)
    # 0.2 unadjusted although ack_delay 0.05 would be allowed by min_rtt.
    assert r.rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)


# -- loss detection -------------------------------------------------------------------


def test_packet_threshold_declares_three_behind_lost_rfc9002_6_1_1() -> None:
    r = make()
    for pn in range(5):
        send(r, pn, 0.0)
    outcome = r.on_ack_received(APP, ((4, 4),), 0.0, 0.1)
    assert pns(outcome.acked) == [4]
    assert pns(outcome.lost) == [0, 1]  # 4 >= pn + 3
    assert r.bytes_in_flight == 2 * MDS  # 2 and 3 still in flight
    assert r.packets_lost == 2 and r.bytes_lost == 2 * MDS
    # 2 and 3 wait for the time threshold: 9/8 * max(0.1, 0.1) after their send time.
    assert r.loss_detection_deadline() == pytest.approx(0.1125)


def test_time_threshold_declares_old_packets_lost_rfc9002_6_1_2() -> None:
    r = make()
    send(r, 0, 0.0)
    send(r, 1, 0.2)
    outcome = r.on_ack_received(APP, ((1, 1),), 0.0, 0.3)
    # loss_delay = 9/8 * 0.1 = 0.1125; pn 0 was sent before 0.3 - 0.1125.
    assert pns(outcome.lost) == [0]


def test_loss_timer_fires_time_threshold_then_nothing_early() -> None:
    r = make()
    for pn in range(4):
        send(r, pn, 0.0)
    r.on_ack_received(APP, ((3, 3),), 0.0, 0.1)
    assert pns(r.in_flight_packets(APP)) == [1, 2]  # 0 lost by packet threshold
    deadline = r.loss_detection_deadline()
    assert deadline == pytest.approx(0.1125)
    early = r.on_loss_detection_timeout(0.11)
    assert early.lost == [] and early.probe_space is None
    fired = r.on_loss_detection_timeout(0.1125)
    assert pns(fired.lost) == [1, 2]
    assert fired.probe_space is None
    assert r.pto_count == 0
    assert r.bytes_in_flight == 0


def test_time_threshold_timer_at_its_exact_deadline_declares_the_loss() -> None:
    # 0.1 + 9/8 * 0.09 - 9/8 * 0.09 < 0.1 in floating point: comparing against
    # ``now - loss_delay`` would find nothing at the deadline, and a timer set to
    # the same instant would fire forever.
    r = make()
    send(r, 0, 0.0)
    r.on_ack_received(APP, ((0, 0),), 0.0, 0.09)
    send(r, 1, 0.1)
    send(r, 2, 0.1)
    r.on_ack_received(APP, ((2, 2),), 0.0, 0.19)
    deadline = r.loss_detection_deadline()
    assert deadline is not None
    assert deadline - 9 / 8 * 0.09 < 0.1  # the rounding that used to bite
    fired = r.on_loss_detection_timeout(deadline)
    assert pns(fired.lost) == [1]
    assert r.loss_detection_deadline() is None


# -- PTO ------------------------------------------------------------------------------


def test_pto_timing_and_exponential_backoff_rfc9002_6_2() -> None:
    r = make()
    with_rtt_sample(r)  # smoothed 0.1, rttvar 0.05 -> pto base 0.3
    send(r, 1, 1.0)
    pto = 0.1 + 4 * 0.05 + 0.025  # + max_ack_delay for Application Data
    assert r.loss_detection_deadline() == pytest.approx(1.0 + pto)
    fired = r.on_loss_detection_timeout(1.0 + pto)
    assert fired.probe_space == APP and fired.probe_packets == 2 and fired.lost == []
    assert r.pto_count == 1
    assert r.loss_detection_deadline() == pytest.approx(1.0 + 2 * pto)
    r.on_loss_detection_timeout(1.0 + 2 * pto)
    assert r.pto_count == 2
    assert r.loss_detection_deadline() == pytest.approx(1.0 + 4 * pto)
    # A PTO does not declare anything lost (§6.2).
    assert pns(r.in_flight_packets(APP)) == [1]
    # An ACK resets the backoff.
    send(r, 2, 3.0)
    r.on_ack_received(APP, ((2, 2),), 0.0, 3.1)
    assert r.pto_count == 0


def test_pto_uses_initial_rtt_before_any_sample() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, INITIAL)
    # 0.333 + 4 * 0.1665, no max_ack_delay in the Initial space: ~1 second.
    assert r.loss_detection_deadline() == pytest.approx(0.999)


def test_application_pto_not_armed_before_handshake_confirmed() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, APP)
    assert r.loss_detection_deadline() is None
    r.handshake_confirmed = True
    assert r.loss_detection_deadline() == pytest.approx(0.999 + 0.025)


def test_probe_space_is_earliest_pto_among_spaces() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, INITIAL)
    send(r, 0, 0.5, HANDSHAKE)
    send(r, 0, 0.6, APP)
    assert r.loss_detection_deadline() == pytest.approx(0.999)
    fired = r.on_loss_detection_timeout(1.0)
    assert fired.probe_space == INITIAL
    # Backoff applies across spaces: Handshake now at 0.5 + 2 * 0.999.
    r.discard_space(INITIAL)
    assert r.pto_count == 0  # §6.4 resets the backoff
    assert r.loss_detection_deadline() == pytest.approx(0.5 + 0.999)
    fired = r.on_loss_detection_timeout(1.5)
    assert fired.probe_space == HANDSHAKE
    # Application data never probes before confirmation.
    r.discard_space(HANDSHAKE)
    assert r.loss_detection_deadline() is None
    r.handshake_confirmed = True
    assert r.loss_detection_deadline() == pytest.approx(0.6 + 0.999 + 0.025)


def test_client_anti_deadlock_pto_without_packets_in_flight_rfc9002_6_2_2_1() -> None:
    client = make(is_client=True, confirmed=False)
    with_rtt_sample(client, INITIAL)  # server acked our Initial; nothing in flight
    assert client.ack_eliciting_in_flight() == 0
    assert not client.peer_completed_address_validation
    # Armed from the last timer event (the ACK at 0.1) for one PTO (0.3, no backoff yet).
    assert client.loss_detection_deadline() == pytest.approx(0.4)
    fired = client.on_loss_detection_timeout(0.4)
    assert fired.probe_space == INITIAL and fired.probe_packets == 1
    assert client.pto_count == 1
    assert client.loss_detection_deadline() == pytest.approx(0.4 + 0.6)
    # With Handshake keys the probe is a Handshake packet.
    client.has_handshake_keys = True
    assert client.on_loss_detection_timeout(1.0).probe_space == HANDSHAKE
    # A Handshake ACK proves the server validated the client: no timer needed.
    send(client, 0, 1.1, HANDSHAKE)
    client.on_ack_received(HANDSHAKE, ((0, 0),), 0.0, 1.2)
    assert client.peer_completed_address_validation
    assert client.loss_detection_deadline() is None


def test_server_never_arms_anti_deadlock_timer() -> None:
    server = make(is_client=False, confirmed=False)
    with_rtt_sample(server, INITIAL)
    assert server.peer_completed_address_validation
    assert server.loss_detection_deadline() is None


def test_client_keeps_pto_backoff_on_initial_ack_until_validated() -> None:
    client = make(is_client=True, confirmed=False)
    send(client, 0, 0.0, INITIAL)
    send(client, 1, 0.0, INITIAL)
    client.on_loss_detection_timeout(1.0)
    assert client.pto_count == 1
    client.on_ack_received(INITIAL, ((0, 0),), 0.0, 1.1)
    assert client.pto_count == 1  # §6.2.1: not reset by Initial ACKs
    send(client, 0, 1.2, HANDSHAKE)
    client.on_ack_received(HANDSHAKE, ((0, 0),), 0.0, 1.3)
    assert client.pto_count == 0


def test_amplification_limited_server_has_no_pto_until_unblocked() -> None:
    server = make(is_client=False, confirmed=False)
    send(server, 0, 0.0, INITIAL)
    server.amplification_limited = True
    assert server.loss_detection_deadline() is None
    assert server.on_loss_detection_timeout(5.0).probe_space is None
    # A datagram from the client lifts the limit: the PTO is already in the past
    # and fires at once (RFC 9002 Appendix A.6).
    server.amplification_limited = False
    deadline = server.loss_detection_deadline()
    assert deadline is not None and deadline < 5.0
    assert server.on_loss_detection_timeout(5.0).probe_space == INITIAL


# -- persistent congestion ------------------------------------------------------------


def test_persistent_congestion_collapses_window_rfc9002_7_6() -> None:
    r = make()
    with_rtt_sample(r)
    for i, t in enumerate((1.0, 1.3, 1.6, 1.9, 2.2)):
        send(r, i + 1, t)
    send(r, 6, 2.3)
    outcome = r.on_ack_received(APP, ((6, 6),), 0.0, 2.4)
    assert pns(outcome.lost) == [1, 2, 3, 4, 5]
    # Duration (0.1 + 4 * 0.0375 + 0.025) * 3 = 0.825 < 2.2 - 1.0.
    assert r.persistent_congestion_duration() == pytest.approx(0.825)
    assert r.persistent_congestion_events == 1
    # Collapsed to the 2400-byte minimum, then the ACK of 6 (processed after the
    # losses, Appendix A.7) grows it by one packet in the restarted slow start.
    assert r.controller.congestion_window == 2 * MDS + MDS
    assert r.controller.recovery_start_time is None


def test_losses_shorter_than_duration_are_an_ordinary_congestion_event() -> None:
    r = make()
    with_rtt_sample(r)
    for i, t in enumerate((1.0, 1.2, 1.4, 1.6, 1.8)):
        send(r, i + 1, t)
    send(r, 6, 1.9)
    r.on_ack_received(APP, ((6, 6),), 0.0, 2.0)
    assert r.persistent_congestion_events == 0
    assert r.controller.congestion_window == 6000


def test_acknowledged_packet_in_between_prevents_persistent_congestion() -> None:
    r = make()
    with_rtt_sample(r)
    for i, t in enumerate((1.0, 1.3, 1.6, 1.9, 2.2)):
        send(r, i + 1, t)
    send(r, 6, 2.3)
    outcome = r.on_ack_received(APP, ((6, 6), (3, 3)), 0.0, 2.4)
    assert pns(outcome.lost) == [1, 2, 4, 5]
    assert r.persistent_congestion_events == 0


def test_persistent_congestion_run_spans_several_acks() -> None:
    r = make()
    with_rtt_sample(r)
    for i, t in enumerate((1.0, 1.5, 2.1, 2.11, 2.12)):
        send(r, i + 1, t)
    # The ACK of 5 declares 1 and 2 lost: a run of 0.5 s, too short.
    first = r.on_ack_received(APP, ((5, 5),), 0.0, 2.2)
    assert pns(first.lost) == [1, 2]
    assert r.persistent_congestion_events == 0
    assert r.controller.congestion_window == 6000
    # The time threshold then declares 3 lost: the run 1..3 spans 1.1 s.
    deadline = r.loss_detection_deadline()
    assert deadline is not None
    fired = r.on_loss_detection_timeout(deadline)
    assert pns(fired.lost) == [3]
    assert r.persistent_congestion_duration() < 1.1
    assert r.persistent_congestion_events == 1
    assert r.controller.congestion_window == 2 * MDS


def test_packets_before_first_rtt_sample_do_not_count() -> None:
    r = make()
    for i, t in enumerate((0.0, 0.5, 1.0, 1.5, 2.0)):
        send(r, i, t)
    send(r, 5, 2.1)
    outcome = r.on_ack_received(APP, ((5, 5),), 0.0, 2.2)  # the first sample is now
    assert len(outcome.lost) == 5
    assert r.persistent_congestion_events == 0
    assert r.controller.congestion_window == 6000


# -- ECN ------------------------------------------------------------------------------


def test_ecn_ce_increase_is_one_congestion_event_per_round_rfc9002_7_1() -> None:
    r = make()
    for pn in range(4):
        send(r, pn, 0.0)
    r.on_ack_received(APP, ((0, 0),), 0.0, 0.1, ecn_ce=1)
    assert r.controller.congestion_window == 6000
    # More CE marks on packets sent before the recovery started: same round.
    r.on_ack_received(APP, ((0, 1),), 0.0, 0.15, ecn_ce=2)
    assert r.controller.congestion_window == 6000
    # Same count again: nothing new.
    send(r, 4, 0.2)
    r.on_ack_received(APP, ((0, 2),), 0.0, 0.25, ecn_ce=2)
    assert r.controller.congestion_window == 6000
    # A CE increase for a packet sent after the recovery start: a new reduction.
    r.on_ack_received(APP, ((4, 4), (0, 2)), 0.0, 0.3, ecn_ce=3)
    assert r.controller.congestion_window == 3000


# -- discarding -----------------------------------------------------------------------


def test_discard_space_removes_packets_and_resets_timers_rfc9002_6_4() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, INITIAL)
    send(r, 1, 0.0, INITIAL)
    send(r, 0, 0.1, HANDSHAKE)
    r.on_loss_detection_timeout(1.0)
    assert r.pto_count == 1
    dropped = r.discard_space(INITIAL)
    assert pns(dropped) == [0, 1]
    assert r.bytes_in_flight == MDS
    assert r.pto_count == 0
    assert r.is_discarded(INITIAL)
    assert r.on_ack_received(INITIAL, ((0, 1),), 0.0, 1.1).acked == []
    with pytest.raises(ValueError, match="discarded"):
        send(r, 2, 1.2, INITIAL)
    assert r.loss_detection_deadline() == pytest.approx(0.1 + 0.999)


def test_discarding_application_space_keeps_it_open_for_1rtt() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, APP)  # 0-RTT, rejected
    assert pns(r.discard_space(APP)) == [0]
    assert r.bytes_in_flight == 0
    send(r, 1, 0.5, APP)  # 1-RTT continues the numbering
    assert r.largest_sent(APP) == 1


def test_take_all_in_flight_empties_every_space() -> None:
    r = make(confirmed=False)
    send(r, 0, 0.0, INITIAL)
    send(r, 0, 0.0, HANDSHAKE)
    send(r, 0, 0.0, APP)
    send(r, 1, 0.0, APP, ack_eliciting=False, in_flight=False)
    taken = r.take_all_in_flight()
    assert [(p.space, p.packet_number) for p in taken] == [
        (INITIAL, 0),
        (HANDSHAKE, 0),
        (APP, 0),
        (APP, 1),
    ]
    assert r.bytes_in_flight == 0
    assert r.ack_eliciting_in_flight() == 0
    assert r.loss_detection_deadline() is None or not r.peer_completed_address_validation


# -- invalid ACKs ---------------------------------------------------------------------


def test_ack_of_packet_never_sent_is_protocol_violation() -> None:
    r = make()
    send(r, 0, 0.0)
    with pytest.raises(QuicError) as err:
        r.on_ack_received(APP, ((0, 1),), 0.0, 0.1)
    assert err.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
    with pytest.raises(QuicError) as err:
        r.on_ack_received(HANDSHAKE, ((0, 0),), 0.0, 0.1)  # nothing sent there
    assert err.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION


def test_ack_of_skipped_packet_number_is_protocol_violation() -> None:
    r = make()
    send(r, 0, 0.0)
    send(r, 2, 0.0)  # 1 deliberately skipped (RFC 9000 §21.4)
    with pytest.raises(QuicError) as err:
        r.on_ack_received(APP, ((0, 2),), 0.0, 0.1)
    assert err.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION
    outcome = r.on_ack_received(APP, ((2, 2), (0, 0)), 0.0, 0.1)
    assert pns(outcome.acked) == [0, 2]


def test_replacement_recovery_may_start_mid_space() -> None:
    # After Retry or migration the engine builds a new PathRecovery and the space's
    # numbering continues: the numbers below the first one are not "skipped".
    r = make()
    send(r, 57, 0.0)
    send(r, 58, 0.0)
    outcome = r.on_ack_received(APP, ((0, 58),), 0.0, 0.1)
    assert pns(outcome.acked) == [57, 58]


def test_packet_numbers_must_increase() -> None:
    r = make()
    send(r, 5, 0.0)
    with pytest.raises(ValueError, match="not above"):
        send(r, 5, 0.1)


def test_huge_ack_range_costs_only_the_outstanding_packets() -> None:
    r = make()
    send(r, 0, 0.0)
    send(r, 1, 0.0)
    send(r, 10**12, 0.0)  # a jump: everything in between was skipped
    start = time.perf_counter()
    outcome = r.on_ack_received(APP, ((10**12, 10**12), (0, 10**12 - 100)), 0.0, 0.1)
    assert time.perf_counter() - start < 0.5
    assert pns(outcome.acked) == [0, 1, 10**12]


def test_ack_work_is_proportional_to_newly_acked_packets() -> None:
    r = make()
    now = 0.0
    # A long transfer: each ACK repeats the whole history range from 0.
    for pn in range(20000):
        send(r, pn, now)
        if pn % 2 == 1:
            now += 0.001
            outcome = r.on_ack_received(APP, ((0, pn),), 0.0, now)
            assert len(outcome.acked) == 2
    assert r.packets_acked == 20000
    assert r.bytes_in_flight == 0


# -- multipath: paths are independent -------------------------------------------------


def test_two_paths_have_independent_state() -> None:
    path0 = make(path_id=0)
    path1 = make(path_id=1)
    with_rtt_sample(path0)  # 100 ms path
    send(path1, 0, 0.0)
    path1.on_ack_received(APP, ((0, 0),), 0.0, 0.6)  # 600 ms path
    assert path0.rtt.smoothed_rtt == pytest.approx(0.1)
    assert path1.rtt.smoothed_rtt == pytest.approx(0.6)
    # Same packet numbers on both paths: each has its own space.
    for pn in range(1, 6):
        send(path0, pn, 1.0)
        send(path1, pn, 1.0)
    lost = path1.on_ack_received(APP, ((5, 5),), 0.0, 1.6).lost
    assert pns(lost) == [1, 2]
    assert path1.controller.congestion_window == 6000
    assert path0.controller.congestion_window == 12000
    assert path0.bytes_in_flight == 5 * MDS
    assert path0.packets_lost == 0
    # Only path 0 carries Initial and Handshake.
    with pytest.raises(ValueError, match="discarded"):
        send(path1, 0, 2.0, INITIAL)


def test_paths_other_than_zero_start_with_handshake_confirmed() -> None:
    r = PathRecovery(create_controller("cubic", MDS), MDS, is_client=True, path_id=3)
    assert r.handshake_confirmed and r.peer_completed_address_validation
    send(r, 0, 0.0)
    assert r.loss_detection_deadline() == pytest.approx(0.999 + 0.025)


# -- sending gates --------------------------------------------------------------------


def test_can_send_respects_congestion_window() -> None:
    r = make()
    for pn in range(10):
        assert r.can_send(MDS)
        send(r, pn, 0.0)
    assert not r.can_send(1)
    assert r.congestion_window_available() == 0


def test_no_pacing_before_first_rtt_sample_then_1_25_cwnd_per_srtt() -> None:
    r = make()
    for pn in range(10):
        assert r.next_send_time(0.0, MDS) == 0.0
        send(r, pn, 0.0)
    r.on_ack_received(APP, ((0, 9),), 0.0, 0.1)
    cwnd = r.controller.congestion_window
    assert r.pacing_rate() == pytest.approx(1.25 * cwnd / 0.1)
    # The bucket allows a burst of 10 datagrams, then one per size / rate.
    now = 0.1
    for pn in range(10, 20):
        assert r.next_send_time(now, MDS) == now
        send(r, pn, now)
    assert r.next_send_time(now, MDS) == pytest.approx(now + MDS / r.pacing_rate())


class _PacingRecorder(NewReno):
    """NewReno that counts the pacer's calls of its ``on_pacing_limited`` hook."""

    pacing_limited_calls = 0

    def on_pacing_limited(self) -> None:
        self.pacing_limited_calls += 1
        super().on_pacing_limited()


def test_a_packet_held_back_by_the_pacer_tells_the_controller_rfc9002_7_8() -> None:
    controller = _PacingRecorder(MDS)
    r = PathRecovery(controller, MDS, is_client=False)
    r.handshake_confirmed = True
    for pn in range(10):
        send(r, pn, 0.0)
    r.on_ack_received(APP, ((0, 9),), 0.0, 0.1)
    for pn in range(10, 20):
        send(r, pn, 0.1)
    assert controller.pacing_limited_calls == 0
    assert r.next_send_time(0.1, MDS) > 0.1
    assert controller.pacing_limited_calls == 1 and controller.is_cwnd_limited()


def test_delivery_rate_state_is_recorded_and_passed_on() -> None:
    seen: list[AckedPacket] = []

    class Spy:
        def __init__(self) -> None:
            self.inner = create_controller("newreno", MDS)

        @property
        def congestion_window(self) -> int:
            return self.inner.congestion_window

        @property
        def pacing_rate(self) -> float | None:
            return None

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def on_packets_acked(self, acked: list[AckedPacket], *args: object) -> None:
            seen.extend(acked)

    r = PathRecovery(Spy(), MDS, is_client=False)  # type: ignore[arg-type]
    a = send(r, 0, 1.0)
    b = send(r, 1, 1.1)
    assert (a.delivered, a.first_sent_time, a.delivered_time) == (0, 1.0, 1.0)
    assert b.bytes_in_flight_at_send == 2 * MDS
    r.on_ack_received(APP, ((0, 0),), 0.0, 1.2)
    assert r.delivered == MDS
    r.on_app_limited()
    c = send(r, 2, 1.3)
    assert c.delivered == MDS and c.delivered_time == 1.2 and c.first_sent_time == 1.0
    assert c.app_limited
    r.on_ack_received(APP, ((1, 2),), 0.0, 1.4)
    acked_c = seen[-1]
    assert acked_c.packet_number == 2
    assert acked_c.delivered_at_send == MDS
    assert acked_c.delivered_time_at_send == 1.2
    assert acked_c.app_limited is True
    # The app-limited bubble ended once its flight was delivered.
    assert not send(r, 3, 1.5).app_limited

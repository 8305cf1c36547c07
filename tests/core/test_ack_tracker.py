"""AckTracker: RFC 9000 §13.2 and draft-ietf-quic-ack-frequency."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.paths.ack_tracker import (
    ECN_CE,
    ECN_ECT0,
    ECN_ECT1,
    AckTracker,
    decode_ack_delay,
    encode_ack_delay,
)
from tquic.wire.errors import QuicError, TransportErrorCode


def receive(t: AckTracker, pns: list[int], now: float = 0.0, eliciting: bool = True) -> None:
    for pn in pns:
        t.on_packet_received(pn, now, eliciting)


def test_single_ack_eliciting_packet_is_acked_within_max_ack_delay() -> None:
    t = AckTracker(max_ack_delay=0.025)
    t.on_packet_received(0, 1.0, True)
    assert t.ack_deadline() == pytest.approx(1.025)
    assert not t.ack_due(1.01)
    assert t.ack_due(1.025)


def test_non_ack_eliciting_packet_never_makes_an_ack_due() -> None:
    t = AckTracker()
    receive(t, [0, 1, 2, 5], eliciting=False)  # even with a gap
    assert t.ack_deadline() is None
    assert t.has_unacked  # but it may ride along with other frames
    assert t.build_ack_ranges(0.0)[0] == ((5, 5), (0, 2))


def test_initial_and_handshake_packets_are_acked_immediately() -> None:
    t = AckTracker(immediate_space=True)
    t.on_packet_received(0, 2.0, True)
    assert t.ack_deadline() == 2.0
    assert t.ack_due(2.0)


def test_every_second_ack_eliciting_packet_triggers_an_immediate_ack() -> None:
    t = AckTracker()
    t.on_packet_received(0, 1.0, True)
    assert not t.ack_due(1.0)
    t.on_packet_received(1, 1.001, True)
    assert t.ack_due(1.001)
    t.on_ack_sent(1.001)
    assert t.ack_deadline() is None
    t.on_packet_received(2, 1.002, True)
    assert not t.ack_due(1.002)


def test_out_of_order_packet_below_largest_triggers_an_immediate_ack() -> None:
    t = AckTracker()
    receive(t, [0, 1, 3])  # gap at 2 -> immediate; then ACK sent
    t.on_ack_sent(0.0)
    t.on_packet_received(2, 0.0, True)
    assert t.ack_due(0.0)


def test_gap_below_new_largest_triggers_an_immediate_ack() -> None:
    t = AckTracker()
    t.on_packet_received(0, 0.0, True)
    t.on_ack_sent(0.0)
    t.on_packet_received(2, 0.0, True)  # 1 is missing
    assert t.ack_due(0.0)


def test_in_order_packet_after_reported_gap_does_not_trigger_again() -> None:
    t = AckTracker()
    receive(t, [0, 2])
    t.on_ack_sent(0.0)  # reported the gap at 1
    t.on_packet_received(3, 0.0, True)
    assert not t.ack_due(0.0)


def test_ce_marked_packet_is_acked_immediately() -> None:
    t = AckTracker()
    t.on_packet_received(0, 0.0, True, ECN_CE)
    assert t.ack_due(0.0)


def test_ecn_counts_are_kept_per_codepoint_and_not_for_duplicates() -> None:
    t = AckTracker()
    assert t.ecn_counts is None
    t.on_packet_received(0, 0.0, False, ECN_ECT0)
    t.on_packet_received(1, 0.0, False, ECN_ECT0)
    t.on_packet_received(2, 0.0, False, ECN_ECT1)
    t.on_packet_received(3, 0.0, False, ECN_CE)
    assert not t.on_packet_received(3, 0.0, False, ECN_CE)  # duplicate
    assert t.ecn_counts == (2, 1, 1)


def test_duplicate_packet_is_detected_and_changes_nothing() -> None:
    t = AckTracker()
    t.on_packet_received(7, 1.0, True)
    assert t.is_duplicate(7)
    assert not t.is_duplicate(8)
    assert not t.on_packet_received(7, 2.0, True)
    assert t.largest_received_time == 1.0


def test_duplicate_detection_survives_ack_of_ack_pruning() -> None:
    t = AckTracker()
    receive(t, list(range(10)))
    t.on_ack_sent(0.0)
    t.on_ack_acked(9)
    assert t.build_ack_ranges(0.0)[0] == ()
    assert t.is_duplicate(5)
    assert t.largest_received == 9


def test_ack_of_ack_stops_reporting_ranges_at_or_below_largest_acknowledged() -> None:
    t = AckTracker()
    receive(t, [0, 1, 2, 4, 5, 7])
    ranges, _ = t.build_ack_ranges(0.0)
    t.on_ack_sent(0.0, ranges[0][1])
    receive(t, [8, 9])
    t.on_ack_acked(5)
    assert t.build_ack_ranges(0.0)[0] == ((7, 9),)


def test_late_packet_below_pruned_ranges_is_still_reported() -> None:
    t = AckTracker()
    receive(t, [0, 1, 3])
    t.on_ack_sent(0.0)
    t.on_ack_acked(3)
    t.on_packet_received(2, 0.0, True)  # reordered far behind
    assert t.build_ack_ranges(0.0)[0] == ((2, 2),)


def test_packets_below_the_tracking_floor_are_treated_as_duplicates() -> None:
    t = AckTracker(max_ack_ranges=2, max_tracked_ranges=4)
    receive(t, list(range(0, 20, 2)), eliciting=False)
    assert t.is_duplicate(1)  # forgotten: must not be accepted (RFC 9000 §12.3)
    assert not t.is_duplicate(17)
    assert t.build_ack_ranges(0.0)[0] == ((18, 18), (16, 16))


def test_ack_ranges_are_capped_largest_first() -> None:
    t = AckTracker(max_ack_ranges=3)
    receive(t, [0, 2, 4, 6, 8], eliciting=False)
    assert t.build_ack_ranges(0.0)[0] == ((8, 8), (6, 6), (4, 4))


def test_ack_delay_is_measured_from_the_largest_packet() -> None:
    t = AckTracker()
    t.on_packet_received(5, 1.0, True)
    t.on_packet_received(3, 1.5, True)  # older packet later: delay still from pn 5
    ranges, delay = t.build_ack_ranges(1.02)
    assert ranges[0][1] == 5
    assert delay == pytest.approx(0.02)


def test_ack_delay_field_uses_the_exponent() -> None:
    assert encode_ack_delay(0.008, 3) == 1000
    assert decode_ack_delay(1000, 3) == pytest.approx(0.008)
    assert encode_ack_delay(-1.0) == 0


def test_immediate_ack_frame_makes_an_ack_due_now() -> None:
    t = AckTracker()
    t.on_immediate_ack(3.0)
    t.on_packet_received(0, 3.0, True)
    assert t.ack_due(3.0)


def test_ack_frequency_threshold_delays_acks_until_exceeded() -> None:
    t = AckTracker(min_ack_delay=0.001)
    assert t.on_ack_frequency(0, 4, 50_000, 1)
    receive(t, [0, 1, 2, 3], now=1.0)
    assert not t.ack_due(1.0)
    t.on_packet_received(4, 1.0, True)  # 5 > threshold 4
    assert t.ack_due(1.0)


def test_ack_frequency_threshold_zero_acks_every_packet() -> None:
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(0, 0, 25_000, 1)
    t.on_packet_received(0, 0.0, True)
    assert t.ack_due(0.0)


def test_ack_frequency_updates_max_ack_delay() -> None:
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(1, 10, 100_000, 1)
    assert t.max_ack_delay == pytest.approx(0.1)
    t.on_packet_received(0, 2.0, True)
    assert t.ack_deadline() == pytest.approx(2.1)


def test_obsolete_ack_frequency_sequence_number_is_ignored() -> None:
    t = AckTracker(min_ack_delay=0.001)
    assert t.on_ack_frequency(5, 10, 100_000, 1)
    assert not t.on_ack_frequency(5, 2, 10_000, 1)
    assert not t.on_ack_frequency(3, 2, 10_000, 1)
    assert t.ack_eliciting_threshold == 10


def test_requested_max_ack_delay_of_2_14_ms_is_protocol_violation() -> None:
    t = AckTracker(min_ack_delay=0.001)
    with pytest.raises(QuicError) as info:
        t.on_ack_frequency(0, 1, (1 << 14) * 1000, 1)
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION


def test_requested_max_ack_delay_below_min_ack_delay_is_protocol_violation() -> None:
    t = AckTracker(min_ack_delay=0.005)
    with pytest.raises(QuicError) as info:
        t.on_ack_frequency(0, 1, 4_999, 1)
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION


def test_reordering_threshold_zero_disables_immediate_ack_on_gaps() -> None:
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(0, 10, 25_000, 0)
    receive(t, [0, 5, 2])
    assert not t.ack_due(0.0)
    assert t.ack_deadline() == pytest.approx(0.025)


def _run_reordering_example(threshold: int, arrivals: list[int]) -> list[bool]:
    """Feed packets one by one; send an ACK whenever one is due (immediately)."""
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(0, 100, 1_000_000, threshold)
    sent: list[bool] = []
    for pn in arrivals:
        t.on_packet_received(pn, 0.0, True)
        due = t.ack_due(0.0)
        sent.append(due)
        if due:
            ranges, _ = t.build_ack_ranges(0.0)
            t.on_ack_sent(0.0, ranges[0][1])
    return sent


def test_reordering_threshold_3_matches_the_drafts_example_table() -> None:
    # draft-ietf-quic-ack-frequency §"Examples", table ack-reordering-3
    assert _run_reordering_example(3, [0, 1, 3, 4, 5, 8, 9, 10]) == [
        False, False, False, False, True, False, True, True,
    ]  # fmt: skip


def test_reordering_threshold_5_matches_the_drafts_example_table() -> None:
    # draft-ietf-quic-ack-frequency §"Examples", table ack-reordering-5
    assert _run_reordering_example(5, [0, 1, 3, 5, 6, 7, 8, 9]) == [
        False, False, False, False, False, True, False, True,
    ]  # fmt: skip


def test_late_packet_already_declared_lost_triggers_an_immediate_ack() -> None:
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(0, 100, 1_000_000, 3)
    receive(t, [0, 1, *range(3, 11)])
    t.on_ack_sent(0.0, 10)
    t.on_packet_received(2, 0.0, True)  # 2 <= 10 - 3
    assert t.ack_due(0.0)


def test_with_high_threshold_only_the_transition_to_ce_is_urgent() -> None:
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(0, 10, 25_000, 1)
    t.on_packet_received(0, 0.0, True, ECN_CE)
    assert t.ack_due(0.0)
    t.on_ack_sent(0.0)
    t.on_packet_received(1, 0.0, True, ECN_CE)  # still CE: no new urgency
    assert not t.ack_due(0.0)


def test_ack_frequency_does_not_change_the_handshake_spaces_delay() -> None:
    t = AckTracker(immediate_space=True, min_ack_delay=0.001)
    t.on_ack_frequency(0, 10, 100_000, 1)
    t.on_packet_received(0, 0.0, True)
    assert t.ack_due(0.0)


def test_constructor_rejects_max_ack_delay_of_2_14_ms() -> None:
    with pytest.raises(ValueError):
        AckTracker(max_ack_delay=16.384)


def test_discard_drops_pending_ack_state() -> None:
    t = AckTracker(immediate_space=True)
    t.on_packet_received(0, 0.0, True)
    t.discard()
    assert t.ack_deadline() is None
    assert t.build_ack_ranges(0.0)[0] == ()


@settings(max_examples=200, deadline=None)
@given(
    arrivals=st.lists(st.tuples(st.integers(0, 60), st.booleans(), st.booleans()), max_size=60),
    ack_threshold=st.integers(0, 4),
    reordering_threshold=st.integers(0, 4),
)
def test_immediate_ack_decisions_match_a_naive_model_of_the_draft(
    arrivals: list[tuple[int, bool, bool]], ack_threshold: int, reordering_threshold: int
) -> None:
    """Same decisions as a direct, set-based reading of draft-ietf-quic-ack-frequency."""
    t = AckTracker(min_ack_delay=0.001)
    t.on_ack_frequency(0, ack_threshold, 10_000_000, reordering_threshold)
    received: set[int] = set()
    largest_unacked = -1
    largest_acked: int | None = None
    count = 0
    immediate = False
    for pn, eliciting, send_ack in arrivals:
        if pn in received:
            assert t.is_duplicate(pn)
            assert not t.on_packet_received(pn, 0.0, eliciting)
            continue
        assert not t.is_duplicate(pn)
        received.add(pn)
        t.on_packet_received(pn, 0.0, eliciting)
        if eliciting:
            count += 1
            largest_unacked = max(largest_unacked, pn)
            out_of_order = False
            thr = reordering_threshold
            if thr:
                if largest_acked is not None and pn <= largest_acked - thr:
                    out_of_order = True
                reported = largest_acked - thr if largest_acked is not None else -1
                missing = [x for x in range(max(reported + 1, 0), largest_unacked) if x not in received]
                if missing and largest_unacked - missing[0] >= thr:
                    out_of_order = True
            if count > ack_threshold or out_of_order:
                immediate = True
        assert t.ack_due(0.0) == immediate
        if send_ack:
            ranges, _ = t.build_ack_ranges(0.0)
            t.on_ack_sent(0.0, ranges[0][1])
            largest_acked = (
                max(received) if largest_acked is None else max(largest_acked, max(received))
            )
            count = 0
            immediate = False

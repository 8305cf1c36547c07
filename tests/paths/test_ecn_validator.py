"""EcnValidator against RFC 9000 §13.4.2 / Appendix A.4, and PathRecovery's use of it."""

from __future__ import annotations

import pytest

from tquic.cc.newreno import NewReno
from tquic.cc.prague import Prague
from tquic.paths.ecn import (
    ECN_ECT0,
    ECN_ECT1,
    ECN_NOT_ECT,
    TESTING_PACKETS,
    EcnState,
    EcnValidator,
    codepoint_for,
)
from tquic.paths.recovery import PathRecovery
from tquic.paths.sent_packets import SentPacket, SpaceId

APP = SpaceId.APPLICATION


class P:
    """A sent packet as the validator sees it."""

    def __init__(self, ecn: int) -> None:
        self.ecn = ecn


def _sent(v: EcnValidator, n: int) -> list[P]:
    out = []
    for _ in range(n):
        out.append(P(v.codepoint))
        if v.codepoint:
            v.on_marked_sent(APP)
    return out


def test_a_new_path_tests_with_ect0_and_becomes_capable_on_a_validating_ack() -> None:
    v = EcnValidator()
    assert v.state is EcnState.TESTING and v.codepoint == ECN_ECT0
    packets = _sent(v, 3)
    assert v.on_ack(APP, (3, 0, 0), packets, advanced=True) == 0
    assert v.state is EcnState.CAPABLE and v.codepoint == ECN_ECT0


def test_testing_ends_after_ten_packets_then_unknown_stops_marking() -> None:
    v = EcnValidator()
    packets = _sent(v, TESTING_PACKETS)
    v.on_ack(APP, None, [], advanced=False)  # a checkpoint without news
    assert v.state is EcnState.UNKNOWN and v.codepoint == ECN_NOT_ECT
    v.on_ack(APP, (2, 0, 0), packets[:2], advanced=True)
    assert v.state is EcnState.CAPABLE and v.codepoint == ECN_ECT0


def test_all_testing_packets_lost_fails() -> None:
    v = EcnValidator()
    _sent(v, TESTING_PACKETS)
    v.on_marked_lost(TESTING_PACKETS - 1)
    assert v.state is EcnState.UNKNOWN
    v.on_marked_lost(1)
    assert v.state is EcnState.FAILED and v.codepoint == ECN_NOT_ECT


def test_two_ptos_end_testing_so_a_marks_dropping_path_cannot_stall() -> None:
    v = EcnValidator()
    _sent(v, 2)
    v.on_pto(1)
    assert v.state is EcnState.TESTING
    v.on_pto(2)
    assert v.state is EcnState.UNKNOWN and v.codepoint == ECN_NOT_ECT


@pytest.mark.parametrize(("counts", "reason"), [
    (None, "without ECN counts"),  # bleached, or a peer that does not report
    ((1, 0, 0), "fewer ECN marks"),  # some marks cleared
    ((0, 3, 0), "more ECT packets reported"),  # remarked to ECT(1)
    ((9, 0, 0), "more ECT packets reported"),  # more than ever sent
])
def test_validation_failures_rfc9000_13_4_2_1(counts: tuple[int, int, int] | None,
                                              reason: str) -> None:
    v = EcnValidator()
    packets = _sent(v, 3)
    assert v.on_ack(APP, counts, packets, advanced=True) == 0
    assert v.state is EcnState.FAILED and reason in v.failure_reason


def test_decreasing_counts_fail_only_on_an_ack_that_advances_the_largest() -> None:
    v = EcnValidator()
    packets = _sent(v, 6)
    v.on_ack(APP, (4, 0, 0), packets[:4], advanced=True)
    # A reordered (older) ACK: lower counts are expected, and ignored.
    assert v.on_ack(APP, (2, 0, 0), [], advanced=False) == 0
    assert v.state is EcnState.CAPABLE
    v.on_ack(APP, (3, 0, 0), packets[4:], advanced=True)
    assert v.state is EcnState.FAILED and v.failure_reason == "ECN counts decreased"


def test_ce_increase_is_returned_and_ignored_once_failed() -> None:
    v = EcnValidator()
    packets = _sent(v, 4)
    assert v.on_ack(APP, (2, 0, 2), packets, advanced=True) == 2
    v.on_ack(APP, (1, 0, 2), [], advanced=True)  # a count went down (RFC 9000 §13.4.2.1)
    assert v.state is EcnState.FAILED
    assert v.on_ack(APP, (2, 0, 9), [], advanced=True) == 0


def test_controller_picks_the_codepoint() -> None:
    assert codepoint_for(NewReno(1200)) == ECN_ECT0
    assert codepoint_for(Prague(1200)) == ECN_ECT1
    v = EcnValidator(ECN_ECT1)
    packets = _sent(v, 2)
    assert v.codepoint == ECN_ECT1
    assert v.on_ack(APP, (0, 1, 1), packets, advanced=True) == 1
    assert v.state is EcnState.CAPABLE
    assert EcnValidator(enabled=False).codepoint == ECN_NOT_ECT


def test_migration_restarts_testing_with_the_old_counts_as_baseline() -> None:
    old = EcnValidator()
    packets = _sent(old, 5)
    old.on_ack(APP, (4, 0, 1), packets, advanced=True)
    new = EcnValidator()
    new.inherit(old)
    assert new.state is EcnState.TESTING
    fresh = _sent(new, 2)
    # Only the increase since the baseline counts: no stale CE, no failure.
    assert new.on_ack(APP, (6, 0, 1), fresh, advanced=True) == 0
    assert new.state is EcnState.CAPABLE


def test_state_changes_reach_the_hook() -> None:
    seen: list[tuple[str, str]] = []
    v = EcnValidator()
    v.on_state_change = lambda old, new: seen.append((old.value, new.value))
    v.on_ack(APP, None, _sent(v, 1), advanced=True)
    assert seen == [("testing", "failed")]


def _recovery(ecn: EcnValidator) -> PathRecovery:
    r = PathRecovery(NewReno(1200), 1200, is_client=True, ecn=ecn)
    r.handshake_confirmed = True
    return r


def _send(r: PathRecovery, pn: int, now: float) -> None:
    packet = SentPacket(pn, now, 1200, True, True, APP)
    packet.ecn = r.ecn.codepoint
    if packet.ecn:
        r.ecn.on_marked_sent(APP)
    r.on_packet_sent(packet, now)


def test_recovery_responds_to_validated_ce_once_per_round_trip() -> None:
    r = _recovery(EcnValidator())
    for pn in range(6):
        _send(r, pn, 0.0)
    cwnd = r.controller.congestion_window
    r.on_ack_received(APP, ((0, 1),), 0.0, 0.1, ecn_counts=(1, 0, 1))
    assert r.controller.congestion_window < cwnd
    reduced = r.controller.congestion_window
    # More CE for packets sent before the reduction: same recovery period (RFC 9002 §7.3.2).
    r.on_ack_received(APP, ((0, 3),), 0.0, 0.12, ecn_counts=(1, 0, 3))
    assert r.controller.congestion_window == reduced
    assert r.ecn.state is EcnState.CAPABLE


def test_recovery_ignores_ce_from_counts_that_fail_validation() -> None:
    r = _recovery(EcnValidator())
    for pn in range(4):
        _send(r, pn, 0.0)
    cwnd = r.controller.congestion_window
    # Four ECT(0) packets acknowledged, one mark reported: bleached, not congested.
    r.on_ack_received(APP, ((0, 3),), 0.0, 0.1, ecn_counts=(0, 0, 1))
    assert r.ecn.state is EcnState.FAILED
    assert r.controller.congestion_window >= cwnd


def test_lost_marked_packets_reach_the_validator() -> None:
    r = _recovery(EcnValidator())
    for pn in range(TESTING_PACKETS + 4):
        _send(r, pn, 0.0)
    # Testing ends (two PTOs); only later, unmarked packets are acknowledged, and the
    # marked ones are then declared lost by the packet threshold (RFC 9002 §6.1.1).
    r.ecn.on_pto(2)
    first = TESTING_PACKETS + 4
    for pn in range(first, first + 4):
        _send(r, pn, 0.05)
    r.on_ack_received(APP, ((first, first + 3),), 0.0, 2.0)
    assert r.ecn.state is EcnState.FAILED
    assert r.ecn.failure_reason == "every ECN testing packet was lost"

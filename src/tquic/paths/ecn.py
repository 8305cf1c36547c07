"""ECN validation for one path (RFC 9000 §13.4.2, Appendix A.4) and the ECN-CE signal.

Every path tests whether its network path carries ECN before relying on it:

- ``testing``: packets are marked (ECT(0), or ECT(1) for an L4S controller such
  as Prague, RFC 9331 §4.1) until ``TESTING_PACKETS`` marked packets were sent
  or ``TESTING_PTOS`` PTOs expired;
- ``unknown``: no marks, waiting for ACKs of the testing packets;
- ``capable``: an ACK validated the counts for newly acknowledged marked
  packets: mark every packet from now on;
- ``failed``: the counts were missing, went backwards, fell short of the marked
  packets newly acknowledged (bleached or re-marked), exceeded what was sent,
  or every testing packet was lost: stop marking and ignore the counts (no
  congestion response to a signal that cannot be trusted, §13.4.2.2).

The state only changes while ACKs, losses or timeouts are processed, never while
datagrams are built: :attr:`EcnValidator.codepoint` is therefore the mark for
every datagram one ``datagrams_to_send`` call returns for this path, which is
how the I/O layer learns it (``QuicConnection.ecn_codepoint``).

A new path, and a path after migration (a new recovery), starts again in
``testing`` (§13.4.2: "validates this for each new connection ... and on active
connection migration"), keeping the peer's counts as the baseline (Appendix A.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Protocol

ECN_NOT_ECT = 0b00
ECN_ECT1 = 0b01
ECN_ECT0 = 0b10
ECN_CE = 0b11

# RFC 9000 §13.4.2: "the first ten outgoing packets on a path, or ... three PTOs".
TESTING_PACKETS = 10
TESTING_PTOS = 3


class EcnState(Enum):
    """RFC 9000 Appendix A.4 states (values as qlog's ECNState), plus ``disabled``."""

    TESTING = "testing"
    UNKNOWN = "unknown"
    CAPABLE = "capable"
    FAILED = "failed"
    DISABLED = "disabled"  # ECN turned off by configuration: never marks, never tests


class _Marked(Protocol):
    ecn: int


def codepoint_for(controller: object) -> int:
    """ECT(1) when the controller asks for it (``ecn_codepoint == "ect1"``), else ECT(0)."""
    return ECN_ECT1 if getattr(controller, "ecn_codepoint", None) == "ect1" else ECN_ECT0


class EcnValidator:
    """ECN state of one path's sending side (see the module docstring)."""

    __slots__ = (
        "_ect",
        "_ect_index",
        "_last",
        "_sent",
        "_testing_acked",
        "_testing_lost",
        "_testing_sent",
        "codepoint",
        "failure_reason",
        "on_state_change",
        "state",
    )

    def __init__(self, ect: int = ECN_ECT0, *, enabled: bool = True) -> None:
        if ect not in (ECN_ECT0, ECN_ECT1):
            raise ValueError(f"ect must be ECT(0) (2) or ECT(1) (1), got {ect!r}")
        self._ect = ect
        self._ect_index = 0 if ect == ECN_ECT0 else 1
        # Per packet-number space (Initial, Handshake, Application): the peer's last
        # validated (ECT0, ECT1, CE) counts, and how many packets we sent with each
        # ECT codepoint (index 0: ECT(0), 1: ECT(1)).
        self._last: list[tuple[int, int, int]] = [(0, 0, 0), (0, 0, 0), (0, 0, 0)]
        self._sent: list[list[int]] = [[0, 0], [0, 0], [0, 0]]
        self._testing_sent = 0
        self._testing_acked = 0
        self._testing_lost = 0
        self.failure_reason = ""
        # Called with (old, new) on every state change (the engine's qlog hook).
        self.on_state_change: Callable[[EcnState, EcnState], None] | None = None
        self.state = EcnState.TESTING if enabled else EcnState.DISABLED
        self.codepoint = ect if enabled else ECN_NOT_ECT

    @property
    def ect(self) -> int:
        """The ECT codepoint this path marks with while testing or capable."""
        return self._ect

    def marked_sent(self, space: int) -> tuple[int, int]:
        """Packets sent in ``space`` marked (ECT(0), ECT(1))."""
        ect0, ect1 = self._sent[space]
        return ect0, ect1

    def peer_counts(self, space: int) -> tuple[int, int, int]:
        """The peer's last validated (ECT(0), ECT(1), CE) counts for ``space``
        (RFC 9000 §13.4.2.1)."""
        return self._last[space]

    @property
    def active(self) -> bool:
        """Whether ACK ECN counts are processed (testing, unknown or capable)."""
        return self.state is not EcnState.FAILED and self.state is not EcnState.DISABLED

    def use_codepoint_of(self, controller: object) -> None:
        """The path's controller was chosen after this validator: mark for it instead
        (before anything was sent)."""
        self._ect = codepoint_for(controller)
        self._ect_index = 0 if self._ect == ECN_ECT0 else 1
        if self.codepoint:
            self.codepoint = self._ect

    def inherit(self, previous: EcnValidator) -> None:
        """A new recovery replaced ``previous`` (migration): re-test, keeping its counts
        as the baseline (RFC 9000 Appendix A.4) so old marks are not taken for new ones."""
        self._last = list(previous._last)
        self._sent = [list(counts) for counts in previous._sent]

    # -- sending ---------------------------------------------------------------------

    def on_marked_sent(self, space: int) -> None:
        """A packet of ``space`` left marked with :attr:`codepoint`."""
        self._sent[space][self._ect_index] += 1
        if self.state is EcnState.TESTING:
            self._testing_sent += 1

    # -- ACKs, losses, timeouts (the only places the state changes) ------------------

    def on_ack(self, space: int, counts: tuple[int, int, int] | None,
               newly_acked: Sequence[_Marked], advanced: bool) -> int:
        """Validate one ACK frame's counts (RFC 9000 §13.4.2.1); the ECN-CE increase
        to respond to (RFC 9002 §7.1), 0 when there is none or it is not trusted.

        ``advanced``: the ACK raised the largest acknowledged packet number; an ACK
        that does not may be reordered and MUST NOT fail validation.
        """
        if not self.active:
            return 0
        self._end_testing_if_done()
        marked = 0
        for packet in newly_acked:
            if packet.ecn:
                marked += 1
        if counts is None:
            if marked and advanced:
                self._fail("marked packets acknowledged without ECN counts")
            return 0
        ect0, ect1, ce = counts
        last0, last1, last_ce = self._last[space]
        d0, d1, dce = ect0 - last0, ect1 - last1, ce - last_ce
        if d0 < 0 or d1 < 0 or dce < 0:
            if advanced:
                self._fail("ECN counts decreased")
            return 0  # a reordered ACK: older counts, nothing to learn
        if advanced:
            sent0, sent1 = self._sent[space]
            if ect0 > sent0 or ect1 > sent1:
                # Remarked to an ECT codepoint (or a lying peer).
                self._fail("more ECT packets reported than were sent with that codepoint")
                return 0
            mine = d0 if self._ect == ECN_ECT0 else d1
            if mine + dce < marked:
                # Bleached, or ECT remarked to the other ECT codepoint.
                self._fail("fewer ECN marks reported than marked packets acknowledged")
                return 0
        self._last[space] = (ect0, ect1, ce)
        if marked and self.state is not EcnState.CAPABLE:
            self._testing_acked += marked
            if advanced:
                self._set(EcnState.CAPABLE)  # Appendix A.4: validated with a marked packet
        return dce

    def on_marked_lost(self, count: int) -> None:
        """``count`` marked packets were declared lost (RFC 9002 §6)."""
        if self.state is EcnState.TESTING or self.state is EcnState.UNKNOWN:
            self._testing_lost += count
            self._end_testing_if_done()
            if (self.state is EcnState.UNKNOWN and self._testing_acked == 0
                    and self._testing_lost >= self._testing_sent):
                # §13.4.2: every marked packet lost: assume the marks caused it.
                self._fail("every ECN testing packet was lost")

    def on_pto(self, pto_count: int) -> None:
        """A PTO expired: testing lasts about ``TESTING_PTOS`` PTO periods (§13.4.2; the
        second expiry in a row comes 1 + 2 backed-off periods after the first send),
        so a path that drops marked packets cannot stall the connection on them."""
        if self.state is EcnState.TESTING and pto_count >= TESTING_PTOS - 1:
            self._set(EcnState.UNKNOWN)

    def _end_testing_if_done(self) -> None:
        if self.state is EcnState.TESTING and self._testing_sent >= TESTING_PACKETS:
            self._set(EcnState.UNKNOWN)

    def _fail(self, reason: str) -> None:
        self.failure_reason = reason
        self._set(EcnState.FAILED)

    def _set(self, state: EcnState) -> None:
        old = self.state
        if old is state:
            return
        self.state = state
        marks = state is EcnState.TESTING or state is EcnState.CAPABLE
        self.codepoint = self._ect if marks else ECN_NOT_ECT
        hook = self.on_state_change
        if hook is not None:
            hook(old, state)

    def __repr__(self) -> str:
        return f"EcnValidator({self.state.value}, codepoint={self.codepoint})"

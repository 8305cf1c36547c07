"""Session flow control (draft-ietf-webtrans-http3 §5): stream counts and session data.

Pure accounting, no I/O: the session asks whether it may open a stream or send
bytes, reports what the peer did, and sends the capsules this returns.  Flow
control is on only when both endpoints sent a non-zero WT_INITIAL_* setting
(§5.1); otherwise the session never builds a :class:`SessionFlow`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tquic.h3.webtransport.codes import (
    WT_DATA_BLOCKED,
    WT_FLOW_CONTROL_ERROR,
    WT_MAX_DATA,
    WT_MAX_STREAMS_BIDI,
    WT_MAX_STREAMS_UNI,
    WT_STREAMS_BLOCKED_BIDI,
    WT_STREAMS_BLOCKED_UNI,
    CapsuleError,
)
from tquic.wire.buffer import encode_varint


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """Initial limits one side grants per session (SETTINGS_WT_INITIAL_*, §5.5)."""

    max_streams_bidi: int = 0
    max_streams_uni: int = 0
    max_data: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.max_streams_bidi or self.max_streams_uni or self.max_data)


Capsule = tuple[int, bytes]


class SessionFlow:
    """Both directions of one session's limits."""

    __slots__ = (
        "_blocked_data_sent",
        "_local",
        "consumed",
        "local_max_bidi",
        "local_max_data",
        "local_max_uni",
        "opened_bidi",
        "opened_uni",
        "peer_closed_bidi",
        "peer_closed_uni",
        "peer_max_bidi",
        "peer_max_data",
        "peer_max_uni",
        "peer_opened_bidi",
        "peer_opened_uni",
        "received",
        "sent",
    )

    def __init__(self, local: FlowLimits, peer: FlowLimits) -> None:
        self._local = local
        self.local_max_bidi, self.local_max_uni = local.max_streams_bidi, local.max_streams_uni
        self.local_max_data = local.max_data
        self.peer_max_bidi, self.peer_max_uni = peer.max_streams_bidi, peer.max_streams_uni
        self.peer_max_data = peer.max_data
        self.opened_bidi = self.opened_uni = 0
        self.peer_opened_bidi = self.peer_opened_uni = 0
        self.peer_closed_bidi = self.peer_closed_uni = 0
        self.sent = self.received = self.consumed = 0
        self._blocked_data_sent = -1

    # -- what we may do ---------------------------------------------------------------

    def can_open(self, bidirectional: bool) -> bool:
        if bidirectional:
            return self.opened_bidi < self.peer_max_bidi
        return self.opened_uni < self.peer_max_uni

    def on_open(self, bidirectional: bool) -> None:
        if bidirectional:
            self.opened_bidi += 1
        else:
            self.opened_uni += 1

    def streams_blocked(self, bidirectional: bool) -> Capsule:
        """WT_STREAMS_BLOCKED (§5.6.3) for a stream we could not open."""
        if bidirectional:
            return WT_STREAMS_BLOCKED_BIDI, encode_varint(self.peer_max_bidi)
        return WT_STREAMS_BLOCKED_UNI, encode_varint(self.peer_max_uni)

    def send_credit(self) -> int:
        return max(0, self.peer_max_data - self.sent)

    def on_sent(self, size: int) -> None:
        self.sent += size

    def data_blocked(self) -> Capsule | None:
        """WT_DATA_BLOCKED (§5.6.5), once per limit."""
        if self._blocked_data_sent == self.peer_max_data:
            return None
        self._blocked_data_sent = self.peer_max_data
        return WT_DATA_BLOCKED, encode_varint(self.peer_max_data)

    # -- what the peer did --------------------------------------------------------------

    def on_peer_stream(self, bidirectional: bool) -> None:
        """A stream the peer opened; over our limit is WT_FLOW_CONTROL_ERROR (§5.6.2)."""
        if bidirectional:
            self.peer_opened_bidi += 1
            over = self.peer_opened_bidi > self.local_max_bidi
        else:
            self.peer_opened_uni += 1
            over = self.peer_opened_uni > self.local_max_uni
        if over:
            raise CapsuleError(WT_FLOW_CONTROL_ERROR, "peer opened more streams than allowed")

    def on_received(self, size: int) -> None:
        self.received += size
        if self.received > self.local_max_data:
            raise CapsuleError(WT_FLOW_CONTROL_ERROR, "peer sent more than WT_MAX_DATA")

    def on_peer_limit(self, capsule_type: int, value: int) -> None:
        """WT_MAX_STREAMS / WT_MAX_DATA from the peer: must increase (§5.6.2, §5.6.4)."""
        if capsule_type == WT_MAX_DATA:
            current = self.peer_max_data
        elif capsule_type == WT_MAX_STREAMS_BIDI:
            current = self.peer_max_bidi
        elif capsule_type == WT_MAX_STREAMS_UNI:
            current = self.peer_max_uni
        else:
            return  # the *_BLOCKED capsules are only hints
        if value <= current:
            raise CapsuleError(WT_FLOW_CONTROL_ERROR, f"capsule {capsule_type:#x} did not increase")
        if capsule_type == WT_MAX_DATA:
            self.peer_max_data = value
        elif capsule_type == WT_MAX_STREAMS_BIDI:
            self.peer_max_bidi = value
        else:
            self.peer_max_uni = value

    # -- credit we give back ------------------------------------------------------------

    def on_consumed(self, size: int) -> Capsule | None:
        """The application read ``size`` bytes; a WT_MAX_DATA when half the window is used."""
        self.consumed += size
        window = self._local.max_data
        if window and self.local_max_data - self.consumed < window // 2:
            self.local_max_data = self.consumed + window
            return WT_MAX_DATA, encode_varint(self.local_max_data)
        return None

    def on_peer_stream_closed(self, bidirectional: bool) -> Capsule | None:
        """A peer stream finished; raise its limit once half the initial count closed."""
        if bidirectional:
            self.peer_closed_bidi += 1
            window = self._local.max_streams_bidi
            if window and self.local_max_bidi - self.peer_closed_bidi <= window // 2:
                self.local_max_bidi = self.peer_closed_bidi + window
                return WT_MAX_STREAMS_BIDI, encode_varint(self.local_max_bidi)
            return None
        self.peer_closed_uni += 1
        window = self._local.max_streams_uni
        if window and self.local_max_uni - self.peer_closed_uni <= window // 2:
            self.local_max_uni = self.peer_closed_uni + window
            return WT_MAX_STREAMS_UNI, encode_varint(self.local_max_uni)
        return None

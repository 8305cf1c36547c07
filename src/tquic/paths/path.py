"""Path: one network path of a connection, with everything that is per path.

DESIGN.md "Multipath is the normal case": every 1-RTT packet belongs to a
Path, which owns its packet-number space (``space``: next packet number,
AckTracker of received packet numbers), its ``PathRecovery`` (RTT, loss
detection, congestion controller, pacer), its connection IDs, its validation
state (RFC 9000 §8.2) and its anti-amplification counters (§8.1).  Without
multipath there is one Path, path ID 0, whose network path may change
(migration, NAT rebinding, §9).  Initial and Handshake spaces belong to the
connection and run on path 0.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

from tquic.paths.ack_tracker import AckTracker
from tquic.paths.network_path import NetworkPath
from tquic.wire.epochs import SpaceId

if TYPE_CHECKING:
    from tquic.core.cids import PeerCid

AMPLIFICATION_FACTOR = 3  # RFC 9000 §8.1
MIN_PATH_MTU = 1200  # RFC 9000 §14
MINIMUM_WINDOW_PACKETS = 2  # RFC 9002 §7.2 kMinimumWindow


def update_controller_datagram_size(controller: Any, size: int) -> None:
    """Tell a congestion controller the path's new max_datagram_size (RFC 9002 §7.2)."""
    hook = getattr(controller, "on_max_datagram_size_changed", None)
    if hook is not None:
        hook(size)
        return
    if hasattr(controller, "max_datagram_size") and hasattr(controller, "minimum_window"):
        controller.max_datagram_size = size
        controller.minimum_window = MINIMUM_WINDOW_PACKETS * size


SpaceKind = SpaceId
"""The former name of :class:`tquic.wire.epochs.SpaceId` (the same enum), kept for callers."""


class PacketSpace:
    """One packet-number space: what we send (next pn, largest acked by the peer) and
    what we received (AckTracker).  ``path_id`` is None for Initial/Handshake."""

    __slots__ = ("ack_tracker", "discarded", "kind", "largest_acked", "next_pn",
                 "path_id", "probe_packets")

    def __init__(self, kind: SpaceId, ack_tracker: AckTracker, path_id: int | None) -> None:
        self.kind = kind
        self.ack_tracker = ack_tracker
        self.path_id = path_id
        self.next_pn = 0
        self.largest_acked: int | None = None
        self.discarded = False
        self.probe_packets = 0  # PTO probes owed in this space (RFC 9002 §6.2.4)


class PathState(IntEnum):
    VALIDATING = 0  # peer address not validated yet: anti-amplification applies
    VALIDATED = 1
    ABANDONED = 2  # PATH_ABANDON sent or received: no more sending; state kept 3 PTO
    FAILED = 3  # declared broken locally; PATH_ABANDON queued (multipath only)


class Path:
    """One path (a path ID with its 4-tuple and per-path state)."""

    __slots__ = (
        "_state",
        "abandon_deadline",
        "abandon_sent",
        "ack_spacing",
        "amplification_limited",
        "bytes_acked_total",
        "bytes_received",
        "bytes_sent",
        "challenge_deadline",
        "challenge_pending",
        "challenge_retries",
        "challenges",
        "copies",
        "keepalive_at",
        "last_ack_time",
        "local_backup",
        "local_cid_seq",
        "local_status_seq",
        "max_datagram_size",
        "network_path",
        "opened_at",
        "packets_retransmitted",
        "path_id",
        "peer_backup",
        "peer_cid",
        "peer_status_seq",
        "pmtud",
        "previous_network_path",
        "recovery",
        "recovery_first_pn",
        "responses",
        "space",
        "suspect_since",
        "usable",
        "validated",
    )

    def __init__(self, path_id: int, network_path: NetworkPath, recovery: Any,
                 space: PacketSpace, *, validated: bool,
                 max_datagram_size: int = MIN_PATH_MTU) -> None:
        self.path_id = path_id
        self.network_path = network_path
        self.previous_network_path: NetworkPath | None = None
        self.recovery = recovery  # tquic.paths.recovery.PathRecovery
        self.recovery_first_pn = 0  # ACKs below this belong to a recovery we replaced
        self.space = space
        self.state = PathState.VALIDATED if validated else PathState.VALIDATING
        self.peer_cid: PeerCid | None = None  # the DCID we send on this path
        self.local_cid_seq = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.max_datagram_size = max_datagram_size
        self.challenges: dict[bytes, float] = {}  # PATH_CHALLENGE data we sent -> time
        self.challenge_pending = False  # a PATH_CHALLENGE should be sent
        self.challenge_deadline: float | None = None  # give up validating at this time
        self.challenge_retries = 0
        self.responses: list[tuple[bytes, NetworkPath]] = []  # PATH_RESPONSEs owed
        self.pmtud: Any = None  # tquic.core.pmtud.Pmtud when enabled
        # Multipath (draft-ietf-quic-multipath §"Path Status Management", §"Path Close").
        # RFC 9000 §8.1/§9.3: limit sending to an address the PEER moved to; a client
        # opening a path towards the server's known address is not limited.
        self.amplification_limited = True
        self.local_backup = False  # what we signalled (PATH_STATUS_BACKUP/AVAILABLE)
        self.local_status_seq = -1  # last Path Status Sequence Number we sent
        self.peer_backup: bool | None = None  # the peer's last signal, None if none
        self.peer_status_seq = -1  # highest Path Status Sequence Number received
        self.abandon_sent = False
        self.abandon_deadline: float | None = None  # forget the path at this time
        self.keepalive_at: float | None = None  # backup path keep-alive PING time
        self.opened_at = 0.0
        self.last_ack_time: float | None = None  # when an ACK last acknowledged something
        # The path's ACK clock (paths/silence.py): the smoothed gap between its ACKs,
        # and since when it is suspect of being dead (silent while other paths are
        # acknowledged; None: not suspect).
        self.ack_spacing: float | None = None
        self.suspect_since: float | None = None
        self.packets_retransmitted = 0  # records of this path's lost packets resent
        self.bytes_acked_total = 0  # acknowledged bytes of recoveries replaced
        # STREAM records to send again on THIS path, ahead of everything else
        # (redundant copies, deadline reinjections; core/multipath.py, bounded there).
        self.copies: list[tuple[Any, ...]] = []

    @property
    def state(self) -> PathState:
        return self._state

    @state.setter
    def state(self, state: PathState) -> None:
        # ``validated`` and ``usable`` are plain attributes kept in step with the state:
        # the scheduler and the send loop read them several times per packet.
        self._state = state
        self.validated = state == PathState.VALIDATED
        self.usable = state < PathState.ABANDONED

    @property
    def is_backup(self) -> bool:
        """Backup by our own choice or at the peer's request (multipath §"Path Status")."""
        return self.local_backup or bool(self.peer_backup)

    @property
    def state_name(self) -> str:
        return self.state.name.lower()

    def amplification_budget(self) -> int | None:
        """Bytes we may still send before the peer's address is validated (RFC 9000 §8.1);
        None when unlimited."""
        if self.validated or not self.amplification_limited:
            return None
        return max(0, AMPLIFICATION_FACTOR * self.bytes_received - self.bytes_sent)

    def set_max_datagram_size(self, size: int) -> None:
        """The path's datagram size changed (PMTUD, RFC 9000 §14.3): tell its loss
        recovery, congestion controller and pacer.

        RFC 9002 §7.2: the minimum window is 2 * max_datagram_size.  A controller
        that still counts in 1200-byte datagrams while the path sends 1452-byte
        ones has a minimum window that holds ONE packet, so after a loss nothing
        but a PTO probe can reveal it: the transfer crawls at one packet per
        PTO.  Controllers may offer ``on_max_datagram_size_changed(size)``;
        window-based ones without it get their two size fields updated.
        """
        self.max_datagram_size = size
        recovery = self.recovery
        if recovery is None:
            return
        recovery.max_datagram_size = size
        update_controller_datagram_size(recovery.controller, size)
        pacer = getattr(recovery, "pacer", None)
        if pacer is not None and getattr(pacer, "max_datagram_size", size) < size:
            burst = pacer.capacity / pacer.max_datagram_size
            pacer.max_datagram_size = size
            pacer.capacity = float(burst * size)

    def on_validated(self) -> None:
        self.state = PathState.VALIDATED
        self.challenges.clear()
        self.challenge_pending = False
        self.challenge_deadline = None
        self.previous_network_path = None

    def __repr__(self) -> str:
        return (f"Path(id={self.path_id}, {self.network_path.remote}, {self.state.name}, "
                f"mtu={self.max_datagram_size})")

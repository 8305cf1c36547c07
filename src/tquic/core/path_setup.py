"""A path's parts: its packet-number space and ACK tracker, and its loss recovery
(RFC 9002) with the congestion controller and ECN validator the configuration and
the path's policy name; a new recovery when the path moves (RFC 9000 §9.4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tquic.paths.ack_tracker import AckTracker
from tquic.paths.ecn import EcnState, EcnValidator, codepoint_for
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import PacketSpace, Path
from tquic.paths.recovery import PathRecovery
from tquic.wire.epochs import SpaceId

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection


class PathSetup:
    """Builds the parts of a path for the connection; owns nothing."""

    __slots__ = ("_c",)

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn

    def new_path(self, path_id: int, network_path: NetworkPath, *, validated: bool) -> Path:
        c = self._c
        tracker = AckTracker(max_ack_delay=c._config.max_ack_delay,
                             min_ack_delay=c._config.min_ack_delay)
        space = PacketSpace(SpaceId.APPLICATION, tracker, path_id)
        return Path(path_id, network_path, self.make_recovery(path_id), space,
                    validated=validated)

    def make_recovery(self, path_id: int) -> PathRecovery:
        conn = self._c
        c = conn._config
        controller = conn._multipath.controller_for(path_id)
        ecn = EcnValidator(codepoint_for(controller), enabled=c.ecn)
        if conn._qlog is not None:
            ecn.on_state_change = self._qlog_ecn_hook(path_id)
        recovery = PathRecovery(controller, 1200, initial_rtt=c.initial_rtt,
                                is_client=conn._is_client, path_id=path_id, ecn=ecn)
        if conn._peer_params is not None:
            recovery.peer_max_ack_delay = conn._peer_params.max_ack_delay / 1000.0
        recovery.handshake_confirmed = conn._handshake_confirmed
        if conn._is_client:
            recovery.peer_completed_address_validation = conn._handshake_confirmed
        else:
            recovery.peer_completed_address_validation = True
        return recovery

    def reset_recovery(self, path: Path) -> None:
        """New RTT estimator and controller (Retry, migration: RFC 9000 §9.4); what was in
        flight is resent as lost."""
        c = self._c
        old = path.recovery
        packets = old.take_all_in_flight()
        path.recovery = self.make_recovery(path.path_id)
        path.recovery.ecn.inherit(old.ecn)  # RFC 9000 §13.4.2: re-test after migration
        path.recovery_first_pn = path.space.next_pn
        for packet in packets:
            c._streams.on_packet_lost(packet, path)

    def _qlog_ecn_hook(self, path_id: int) -> Any:
        c = self._c
        qlog = c._qlog

        def changed(old: EcnState, new: EcnState) -> None:
            if qlog is not None:  # quic-events "ecn_state_updated"
                qlog.emit_untimed("quic:ecn_state_updated",
                                  {"old": old.value, "new": new.value, "path_id": path_id})
        return changed

"""The multipath frames received (draft-ietf-quic-multipath §"New Frames"): PATH_ACK,
PATH_ABANDON, PATH_STATUS_BACKUP/AVAILABLE, PATH_NEW_CONNECTION_ID,
PATH_RETIRE_CONNECTION_ID, MAX_PATH_ID, PATHS_BLOCKED and PATH_CIDS_BLOCKED, each
checked against the draft's rules and applied to the Multipath component
(core/multipath.py).  Dispatched by core/frame_handlers.py through MP_HANDLERS
once multipath is negotiated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tquic.core.cid_issue import issue_path_cids, replenish_path
from tquic.core.cids import PeerCids
from tquic.core.events import (
    ConnectionIdRetired,
    PathStatusChanged,
)
from tquic.core.multipath import MAX_PATH_ID_LIMIT, PV, Multipath
from tquic.paths.path import Path, PathState
from tquic.wire.errors import QuicError
from tquic.wire.frames import (
    FrameType,
    MaxPathIdFrame,
    PathAbandonFrame,
    PathAckFrame,
    PathCidsBlockedFrame,
    PathNewConnectionIdFrame,
    PathRetireConnectionIdFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
)


def on_path_ack(mp: Multipath, frame: PathAckFrame, epoch: int, path: Path, now: float) -> None:
    c = mp.conn
    frame_type = FrameType.PATH_ACK if frame.ecn is None else FrameType.PATH_ACK_ECN
    mp.check_id(frame.path_id, frame_type)
    target = c._paths.get(frame.path_id)
    if target is None or target.state == PathState.ABANDONED:
        return  # §"Handling PATH_ACK for Abandoned Paths": silently ignored
    c._frame_handlers.process_ack(target, frame.ranges, frame.ack_delay, frame.ecn, frame_type, now)


def on_path_abandon(mp: Multipath, frame: PathAbandonFrame, epoch: int, path: Path,
                     now: float) -> None:
    c = mp.conn
    mp.check_id(frame.path_id, FrameType.PATH_ABANDON)
    target = c._paths.get(frame.path_id)
    if target is None:
        mp.used_ids.add(frame.path_id)  # abandoned before use: not an error
        return
    if target.state == PathState.ABANDONED:
        return
    mp.abandon(target, frame.error_code, now, by_peer=True)
    if not c._paths.open_paths():
        # §"Path Close": PATH_ABANDON for the only open path: close the connection.
        c.close(0, "peer abandoned the last path", application=False)


def on_path_status(mp: Multipath, frame: PathStatusBackupFrame | PathStatusAvailableFrame,
                    epoch: int, path: Path, now: float) -> None:
    c = mp.conn
    backup = isinstance(frame, PathStatusBackupFrame)
    mp.check_id(frame.path_id, FrameType.PATH_STATUS_BACKUP if backup
                      else FrameType.PATH_STATUS_AVAILABLE)
    seq = frame.path_status_sequence_number
    target = c._paths.get(frame.path_id)
    if target is None:
        pending = mp.pending_status.get(frame.path_id)
        if frame.path_id not in mp.used_ids and (pending is None or seq > pending[0]):
            mp.pending_status[frame.path_id] = (seq, backup)
        return
    if seq <= target.peer_status_seq:
        return  # §"PATH_STATUS_AVAILABLE and PATH_STATUS_BACKUP frames": outdated
    target.peer_status_seq = seq
    changed = target.peer_backup != backup
    target.peer_backup = backup
    if changed:
        c._queue_event(PathStatusChanged(frame.path_id, backup, by_peer=True))


def on_path_new_connection_id(mp: Multipath, frame: PathNewConnectionIdFrame, epoch: int,
                               path: Path, now: float) -> None:
    c = mp.conn
    ft = FrameType.PATH_NEW_CONNECTION_ID
    mp.check_id(frame.path_id, ft)
    if frame.path_id in mp.used_ids and c._paths.get(frame.path_id) is None:
        return  # a path we already forgot
    existing = c._paths.get(frame.path_id)
    if existing is not None and existing.state == PathState.ABANDONED:
        return
    # RFC 9000 §5.1: a CID is unique on the connection, whatever its path ID.
    for pid, other in c._cids.peer.items():
        if pid != frame.path_id and other.has_cid(frame.connection_id):
            raise QuicError(PV, "connection ID issued for two path IDs", frame_type=ft)
    cids = c._cids.peer.get(frame.path_id)
    if cids is None:
        cids = PeerCids(c._config.active_connection_id_limit)
        c._cids.peer[frame.path_id] = cids
    try:
        retired = cids.on_new_connection_id(
            frame.sequence_number, frame.retire_prior_to, frame.connection_id,
            frame.stateless_reset_token, len(frame.connection_id))
    except QuicError as exc:
        raise QuicError(exc.error_code, exc.reason, frame_type=ft) from None
    if existing is not None and any(existing.peer_cid is old for old in retired):
        existing.peer_cid = cids.acquire()
        if existing.peer_cid is None:
            raise QuicError(PV, "retire_prior_to left no connection ID", frame_type=ft)
    mp.flush_retirements()


def on_path_retire_connection_id(mp: Multipath, frame: PathRetireConnectionIdFrame, epoch: int,
                                  path: Path, now: float) -> None:
    c = mp.conn
    ft = FrameType.PATH_RETIRE_CONNECTION_ID
    mp.check_id(frame.path_id, ft)
    found = c._cids.local.get(frame.path_id)
    if found is None:
        if frame.path_id in mp.used_ids:
            return
        raise QuicError(PV, f"no connection ID issued for path {frame.path_id}",
                        frame_type=ft)
    cids = found
    try:
        entry = cids.on_retire(frame.sequence_number, c._rx_dcid)
    except QuicError as exc:
        raise QuicError(exc.error_code, exc.reason, frame_type=ft) from None
    if entry is None:
        return
    c._cids.index.pop(entry.cid, None)
    c._queue_event(ConnectionIdRetired(entry.cid, entry.sequence_number, frame.path_id))
    target = c._paths.get(frame.path_id)
    if frame.path_id == 0:
        mp.issue_cids()
    elif target is None or target.state != PathState.ABANDONED:
        replenish_path(c, frame.path_id)


def on_max_path_id(mp: Multipath, frame: MaxPathIdFrame, epoch: int, path: Path, now: float) -> None:
    value = frame.maximum_path_id
    if value > MAX_PATH_ID_LIMIT or value < mp.peer_initial_max:
        # §"MAX_PATH_ID frame": invalid Maximum Path Identifier.
        raise QuicError(PV, f"invalid MAX_PATH_ID {value}", frame_type=FrameType.MAX_PATH_ID)
    if value > mp.peer_max:
        mp.peer_max = value
        issue_path_cids(mp)


def on_paths_blocked(mp: Multipath, frame: PathsBlockedFrame, epoch: int, path: Path,
                      now: float) -> None:
    if frame.maximum_path_id > mp.local_max:
        raise QuicError(PV, "PATHS_BLOCKED above our maximum path ID",
                        frame_type=FrameType.PATHS_BLOCKED)


def on_path_cids_blocked(mp: Multipath, frame: PathCidsBlockedFrame, epoch: int, path: Path,
                          now: float) -> None:
    c = mp.conn
    ft = FrameType.PATH_CIDS_BLOCKED
    mp.check_id(frame.path_id, ft)
    cids = c._cids.local.get(frame.path_id)
    next_seq = 0 if cids is None else cids.next_sequence
    if frame.next_sequence_number > next_seq:
        raise QuicError(PV, "PATH_CIDS_BLOCKED names a sequence number never issued",
                        frame_type=ft)
    if frame.path_id != 0:
        replenish_path(c, frame.path_id)


MP_HANDLERS: dict[type, Callable[[Any, Any, int, Path, float], None]] = {
    PathAckFrame: on_path_ack,
    PathAbandonFrame: on_path_abandon,
    PathStatusBackupFrame: on_path_status,
    PathStatusAvailableFrame: on_path_status,
    PathNewConnectionIdFrame: on_path_new_connection_id,
    PathRetireConnectionIdFrame: on_path_retire_connection_id,
    MaxPathIdFrame: on_max_path_id,
    PathsBlockedFrame: on_paths_blocked,
    PathCidsBlockedFrame: on_path_cids_blocked,
}

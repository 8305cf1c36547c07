"""Issuing and retiring connection IDs for every path (RFC 9000 §5.1,
draft-ietf-quic-multipath §"Issuing New Connection IDs").

Path 0 gets NEW_CONNECTION_ID up to the peer's active_connection_id_limit; under
multipath, unused path IDs up to both sides' limits get their CIDs ahead of time
(PATH_NEW_CONNECTION_ID), a bounded number beyond the highest in use.  The CIDs
themselves live in the connection's CidTable (core/cids.py); this queues the
frames that announce and retire them, and the events the endpoint routes by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tquic.core.cids import LocalCids
from tquic.core.events import ConnectionIdIssued
from tquic.core.records import FrameRecord, RetireCidRecord
from tquic.wire.frames import (
    NewConnectionIdFrame,
    PathNewConnectionIdFrame,
    PathRetireConnectionIdFrame,
)

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection
    from tquic.core.multipath import Multipath

PROACTIVE_PATH_IDS = 8  # unused path IDs we issue CIDs for ahead of time (bounded)
CIDS_PER_NEW_PATH = 2  # one to open the path, one spare for a migration of it


def issue_path_cids(mp: Multipath) -> None:
    """§"Issuing New Connection IDs": CIDs for unused path IDs up to the minimum of
    both limits, without holes, a bounded number ahead of the highest in use."""
    c = mp.conn
    if not c._mp or c._peer_params is None:
        return
    limit = min(mp.local_max, mp.peer_max,
                max(mp.used_ids) + PROACTIVE_PATH_IDS)
    per_path = min(c._peer_params.active_connection_id_limit, CIDS_PER_NEW_PATH)
    for path_id in range(1, limit + 1):
        if path_id in c._cids.local or (
                path_id in mp.used_ids and c._paths.get(path_id) is None):
            continue
        cids = LocalCids(c._config.connection_id_length, c._config.stateless_reset_key,
                         path_id=path_id, generator=c._config.connection_id_generator)
        while cids.initial is not None and (
                cids.initial.cid in c._cids.local[0] or cids.initial.cid in c._cids.index):
            cids = LocalCids(c._config.connection_id_length,
                             c._config.stateless_reset_key, path_id=path_id,
                             generator=c._config.connection_id_generator)
        c._cids.local[path_id] = cids
        entries = list(cids.active) + cids.replenish(per_path)
        for entry in entries:
            _announce(c, path_id, entry.sequence_number, entry.cid, entry.reset_token)


def _announce(c: QuicConnection, path_id: int, seq: int, cid: bytes, token: bytes) -> None:
    c._cids.index[cid] = path_id
    c._control.push(FrameRecord(PathNewConnectionIdFrame(path_id, seq, 0, cid, token)))
    c._queue_event(ConnectionIdIssued(cid, seq, token, path_id))


def replenish_path(c: QuicConnection, path_id: int) -> None:
    cids = c._cids.local.get(path_id)
    if cids is None or c._peer_params is None:
        return
    per_path = min(c._peer_params.active_connection_id_limit, CIDS_PER_NEW_PATH)
    for entry in cids.replenish(per_path):
        _announce(c, path_id, entry.sequence_number, entry.cid, entry.reset_token)


def issue_cids(c: QuicConnection) -> None:
    """NEW_CONNECTION_ID for path 0 up to the peer's active_connection_id_limit."""
    if c._peer_params is None:
        return
    for entry in c._cids.local[0].replenish(c._peer_params.active_connection_id_limit):
        c._control.push(FrameRecord(NewConnectionIdFrame(
            entry.sequence_number, 0, entry.cid, entry.reset_token)))
        c._queue_event(ConnectionIdIssued(entry.cid, entry.sequence_number, entry.reset_token))


def flush_retirements(c: QuicConnection) -> None:
    """RETIRE_CONNECTION_ID (path 0) and PATH_RETIRE_CONNECTION_ID frames owed."""
    pending = c._cids.peer[0].pending_retirements
    for seq in pending:
        c._control.push(RetireCidRecord(seq))
    pending.clear()
    _flush_path_retirements(c)


def _flush_path_retirements(c: QuicConnection) -> None:
    for path_id, cids in c._cids.peer.items():
        if path_id == 0:
            continue  # RETIRE_CONNECTION_ID: flush_retirements
        for seq in cids.pending_retirements:
            c._control.push(FrameRecord(PathRetireConnectionIdFrame(path_id, seq)))
        cids.pending_retirements.clear()

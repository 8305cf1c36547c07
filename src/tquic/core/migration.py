"""Migration seam of the connection (RFC 9000 §9): a peer moving to a new address
(NAT rebinding or active migration), path validation (§8.2) and its failure.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tquic.core.events import PathMigrated
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path, PathState

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection


class Migration:
    """Address changes of the connection's paths and their validation (RFC 9000 §8.2,
    §9); the state is the Path's own (network_path, challenges, previous address)."""

    __slots__ = ("_c",)

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn

    def on_address_change(self, path: Path, network_path: NetworkPath, migrate: bool,
                           size: int, now: float) -> None:
        """RFC 9000 §9: a non-probing packet with the highest packet number from a new
        address moves the path there, unvalidated, and starts path validation."""
        c = self._c
        if not migrate or c._is_client or not c._handshake_confirmed:
            return
        if network_path.remote == path.network_path.remote:
            # Only OUR address changed: the client followed our preferred address (RFC
            # 9000 §9.6). Its address is the validated one (§9.3 allows skipping
            # validation); another server address is a new path for recovery (§9.4).
            path.network_path = network_path
            c._path_setup.reset_recovery(path)
            c._queue_event(PathMigrated(path.path_id, network_path))
            return
        port_only = network_path.remote[0] == path.network_path.remote[0]
        path.previous_network_path = path.network_path
        path.network_path = network_path
        path.bytes_received = size
        path.bytes_sent = 0
        path.state = PathState.VALIDATING
        self.start_challenge(path, now)
        if not port_only:
            c._path_setup.reset_recovery(path)  # §9.4: new path, new RTT and congestion state
        # §9.5: a new CID towards a new address; with multipath one of the same path ID
        # (draft-ietf-quic-multipath §"Relation to Probing and Migration").
        cids = c._cids.peer.get(path.path_id)
        new_cid = cids.acquire() if cids is not None else None
        if new_cid is not None and cids is not None:
            old = path.peer_cid
            path.peer_cid = new_cid
            if old is not None:
                cids.retire(old.sequence_number)
                c._multipath.flush_retirements()
        c._queue_event(PathMigrated(path.path_id, network_path))

    def start_challenge(self, path: Path, now: float) -> None:
        c = self._c
        path.challenge_pending = True
        path.challenge_retries = 0
        path.challenge_deadline = now + max(3 * c._timers.pto(), 6 * c._config.initial_rtt)

    def new_challenge(self, path: Path) -> bytes:
        data = os.urandom(8)
        if len(path.challenges) >= 4:
            path.challenges.pop(next(iter(path.challenges)))
        path.challenges[data] = 0.0
        path.challenge_pending = False
        return data

    def migrate(self, network_path: NetworkPath, now: float, path_id: int | None = None) -> None:
        """Client: move a path (default: the primary one) to a new local address (RFC 9000
        §9.2), with a new DCID of the same path ID (§9.5; draft-ietf-quic-multipath
        §"Relation to Probing and Migration") and path validation."""
        c = self._c
        if not c._is_client or not c._handshake_confirmed:
            raise RuntimeError("migration needs a client with a confirmed handshake")
        if c._peer_params is not None and c._peer_params.disable_active_migration:
            raise RuntimeError("the server disabled active migration")
        path = c._paths.primary if path_id is None else c._paths.get(path_id)
        if path is None or not path.usable:
            raise RuntimeError(f"no open path {path_id}")
        cids = c._cids.peer.get(path.path_id)
        new_cid = cids.acquire() if cids is not None else None
        if new_cid is None or cids is None:
            raise RuntimeError("no spare connection ID from the peer to migrate with")
        old = path.peer_cid
        path.peer_cid = new_cid
        if old is not None:
            cids.retire(old.sequence_number)
            c._multipath.flush_retirements()
        path.previous_network_path = path.network_path
        path.network_path = network_path
        c._path_setup.reset_recovery(path)
        self.start_challenge(path, now)

    def on_validation_failed(self, path: Path, now: float = 0.0) -> None:
        c = self._c
        path.challenge_deadline = None
        path.challenges.clear()
        path.challenge_pending = False
        if path.previous_network_path is not None:
            # RFC 9000 §9.3.2: go back to the last validated address.
            path.network_path = path.previous_network_path
            path.previous_network_path = None
            path.state = PathState.VALIDATED
            c._queue_event(PathMigrated(path.path_id, path.network_path))
        elif path.path_id != 0 and path.state == PathState.VALIDATING:
            # draft-ietf-quic-multipath §"Path Initiation": a path that fails validation
            # must not be used, and is closed explicitly.
            c._multipath.fail_path(path, "path validation failed", now)

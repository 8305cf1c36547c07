"""Multipath in the connection (draft-ietf-quic-multipath, the editor's copy).

Negotiation (initial_max_path_id), per-path connection IDs (PATH_NEW_CONNECTION_ID /
PATH_RETIRE_CONNECTION_ID, proactively issued for unused path IDs), path
initiation by the client and acceptance by the server (validated with
PATH_CHALLENGE/PATH_RESPONSE on the new 4-tuple), PATH_ACK, PATH_STATUS_*,
MAX_PATH_ID / PATHS_BLOCKED / PATH_CIDS_BLOCKED, PATH_ABANDON with the 3 x PTO
retention of the path's state, and failover (a failed path's data is
reinjected on the others at once).  Policy (which path may carry data, when
a path counts as failed) is in paths/manager.py; issuing and retiring the
paths' connection IDs in core/cid_issue.py.

Without both endpoints advertising initial_max_path_id nothing here runs and
every multipath frame is a PROTOCOL_VIOLATION (§"Connection Lifecycle").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tquic.cc.coupled_registry import connection_controller_factory, release_controller
from tquic.core.cid_issue import flush_retirements, issue_cids, issue_path_cids
from tquic.core.cids import PeerCid
from tquic.core.conn_base import ConnState, Epoch
from tquic.core.events import (
    ConnectionIdRetired,
    PathAbandoned,
    PathAvailable,
    PathFailed,
    PathStatusChanged,
)
from tquic.core.records import FrameRecord, Record, StreamRecord
from tquic.paths.ack_tracker import AckTracker
from tquic.paths.manager import PathStats
from tquic.paths.network_path import Address, NetworkPath
from tquic.paths.path import PacketSpace, Path, PathState
from tquic.paths.silence import ack_due_since, note_ack, silence_deadline
from tquic.wire.buffer import encode_varint, varint_size
from tquic.wire.epochs import SpaceId
from tquic.wire.errors import PathAbandonCode, QuicError, TransportErrorCode
from tquic.wire.frames import (
    MaxPathIdFrame,
    PathAbandonFrame,
    PathCidsBlockedFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
)

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection

logger = logging.getLogger("tquic.connection")

PV = TransportErrorCode.PROTOCOL_VIOLATION
MAX_PATH_ID_LIMIT = (1 << 32) - 1  # §"initial_max_path_id": the nonce holds 32 bits
MIN_NONCE_LENGTH = 12  # §"initial_max_path_id": AEADs with shorter nonces cannot be used
MAX_PATH_COPIES = 256  # STREAM records queued as copies on one path (redundant, deadline)


class PathError(RuntimeError):
    """add_path / set_path_status / abandon_path refused (not negotiated, no path ID or
    connection ID available, unknown path)."""


class Multipath:
    """Paths beyond path 0 and the multipath frames.  Owns the negotiated path-ID
    limits, the path IDs used, PATH_STATUS received before its path, and the
    congestion-controller factories (coupled controllers share one); the connection
    IDs of every path are the connection's CidTable (core/cids.py).  Policy
    (which path may carry data, when one counts as failed) is paths/manager.py's."""

    __slots__ = ("_c", "cc_factories", "local_max", "peer_initial_max", "peer_max",
                 "pending_status", "used_ids")

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn
        self.local_max = conn._config.max_path_id or 0
        self.peer_max = 0
        self.peer_initial_max = 0
        self.used_ids: set[int] = {0}
        self.pending_status: dict[int, tuple[int, bool]] = {}  # path ID -> (seq, backup)
        self.cc_factories: dict[str, Callable[[int], Any]] = {}

    @property
    def conn(self) -> QuicConnection:
        """The connection (for the frame handlers of core/multipath_frames.py)."""
        return self._c

    def controller_for(self, path_id: int, name: str | None = None) -> Any:
        """The path's congestion controller: per-path override, else the configured one;
        coupled controllers (lia/olia/balia) share one group per connection."""
        c = self._c
        policy = c._paths.policy
        chosen = name or policy.congestion_control_for(path_id, c._config.congestion_control)
        factory = self.cc_factories.get(chosen)
        if factory is None:
            factory = connection_controller_factory(chosen)
            self.cc_factories[chosen] = factory
        return factory(1200)

    @property
    def multipath_enabled(self) -> bool:
        """Both endpoints advertised initial_max_path_id (multipath is in use)."""
        c = self._c
        return c._mp

    def on_peer_params(self, peer_max: int | None) -> None:
        """§"initial_max_path_id": used only if both sides advertise it."""
        c = self._c
        if peer_max is None or c._config.max_path_id is None:
            return
        if peer_max > MAX_PATH_ID_LIMIT:
            raise QuicError(TransportErrorCode.TRANSPORT_PARAMETER_ERROR,
                            "initial_max_path_id above 2^32-1")
        c._mp = True
        self.peer_max = peer_max
        self.peer_initial_max = peer_max
        issue_path_cids(self)

    def check_nonce(self) -> None:
        """§"initial_max_path_id": a cipher suite with a nonce under 12 bytes cannot be
        used with multipath: TRANSPORT_PARAMETER_ERROR."""
        c = self._c
        keys = c._crypto.one_rtt
        if c._mp and keys is not None and len(getattr(keys.send, "iv", b"\0" * 12)) < (
                MIN_NONCE_LENGTH):
            raise QuicError(TransportErrorCode.TRANSPORT_PARAMETER_ERROR,
                            "multipath needs an AEAD nonce of at least 12 bytes")

    def issue_cids(self) -> None:
        """NEW_CONNECTION_ID for path 0 up to the peer's active_connection_id_limit."""
        issue_cids(self._c)

    def flush_retirements(self) -> None:
        """RETIRE_CONNECTION_ID (path 0) and PATH_RETIRE_CONNECTION_ID frames owed."""
        flush_retirements(self._c)

    @property
    def host_cids(self) -> list[bytes]:
        return list(self._c._cids.index)

    def _new_path(self, path_id: int, network_path: NetworkPath, peer_cid: PeerCid | None,
                     now: float, congestion_control: str | None = None) -> Path:
        conn = self._c
        c = conn._config
        tracker = AckTracker(max_ack_delay=c.max_ack_delay, min_ack_delay=c.min_ack_delay)
        recovery = conn._path_setup.make_recovery(path_id)
        if congestion_control is not None or conn._paths.policy.path_congestion_control:
            # Its pacing burst and ECN codepoint (ECT(1) for an L4S controller) follow.
            recovery.set_controller(self.controller_for(path_id, congestion_control))
        path = Path(path_id, network_path, recovery, PacketSpace(SpaceId.APPLICATION, tracker,
                                                                  path_id), validated=False)
        path.peer_cid = peer_cid
        path.opened_at = now
        if c.pmtud and conn._peer_params is not None:
            from tquic.core.pmtud import Pmtud

            ceiling = min(c.max_udp_payload_size, conn._peer_params.max_udp_payload_size)
            if ceiling > path.max_datagram_size:
                path.pmtud = Pmtud(path.max_datagram_size, ceiling)
        pending = self.pending_status.pop(path_id, None)
        if pending is not None:
            path.peer_status_seq, path.peer_backup = pending
        conn._paths.add(path)
        self.used_ids.add(path_id)
        conn._queue_event(PathAvailable(path_id, network_path))
        if pending is not None and pending[1]:
            conn._queue_event(PathStatusChanged(path_id, True, by_peer=True))
        return path

    @property
    def can_open_path(self) -> bool:
        """Client: ``add_path`` would succeed now (multipath negotiated, handshake
        confirmed, an unused path ID with connection IDs from both sides)."""
        c = self._c
        if not (c._is_client and c._mp and c._handshake_confirmed
                and c._state == ConnState.CONNECTED):
            return False
        for path_id in range(1, min(self.local_max, self.peer_max) + 1):
            peer = c._cids.peer.get(path_id)
            if (path_id not in self.used_ids and path_id in c._cids.local
                    and peer is not None and peer.unused_count):
                return True
        return False

    def add_path(self, local: NetworkPath | Address, remote_addr: Address | None = None,
                 now: float = 0.0, *, backup: bool = False,
                 congestion_control: str | None = None) -> int:
        """Client: open a new path from ``local`` (a local address, or a whole
        NetworkPath) to ``remote_addr`` (default: path 0's peer address).  Returns the
        path ID; PathValidated follows when PATH_RESPONSE arrives
        (§"Path Initiation and Validation").  Raises PathError when impossible (a
        PATHS_BLOCKED or PATH_CIDS_BLOCKED frame is then sent when it may help)."""
        c = self._c
        if not c._is_client:
            raise PathError("only a client opens paths (§\"Path Management\")")
        if not c._mp or not c._handshake_confirmed or c._state != ConnState.CONNECTED:
            raise PathError("multipath is not negotiated, or the handshake is not confirmed")
        if isinstance(local, NetworkPath):
            network_path = local
        else:
            remote = remote_addr or c._paths.primary.network_path.remote
            network_path = NetworkPath(tuple(local), tuple(remote))  # type: ignore[arg-type]
        limit = min(self.local_max, self.peer_max)
        chosen: int | None = None
        blocked_on_cids: int | None = None
        for path_id in range(1, limit + 1):
            if path_id in self.used_ids:
                continue
            peer = c._cids.peer.get(path_id)
            if path_id in c._cids.local and peer is not None and peer.unused_count:
                chosen = path_id
                break
            if blocked_on_cids is None:
                blocked_on_cids = path_id
        if chosen is None:
            if blocked_on_cids is not None:
                peer = c._cids.peer.get(blocked_on_cids)
                c._control.push(FrameRecord(PathCidsBlockedFrame(
                    blocked_on_cids, 0 if peer is None else peer.next_expected_sequence)))
                raise PathError(f"no connection ID from the peer for path {blocked_on_cids}")
            c._control.push(FrameRecord(PathsBlockedFrame(self.peer_max)))
            raise PathError(f"no unused path ID (peer's maximum is {self.peer_max})")
        peer_cids = c._cids.peer[chosen]
        peer_cid = peer_cids.acquire()
        path = self._new_path(chosen, network_path, peer_cid, now, congestion_control)
        path.amplification_limited = False  # we chose the server's address ourselves
        c._migration.start_challenge(path, now)
        if backup:
            self._send_status(path, True, now)
        issue_path_cids(self)
        return chosen

    def accept_path(self, path_id: int, network_path: NetworkPath,
                        now: float) -> Path | None:
        """Server: a decrypted packet on an unused path ID opens that path (§"Path
        Initiation and Validation"); we validate the client's address before data."""
        c = self._c
        if (c._is_client or path_id in self.used_ids
                or c._state != ConnState.CONNECTED):
            return None
        if not c._paths.policy.accept_paths:
            # §"Path Initiation": a path we do not want is closed with PATH_ABANDON
            # sent on another path; the path ID is consumed.
            self.used_ids.add(path_id)
            c._control.push(FrameRecord(PathAbandonFrame(
                path_id, PathAbandonCode.PATH_RESOURCE_LIMIT_REACHED)))
            return None
        peer_cids = c._cids.peer.get(path_id)
        peer_cid = peer_cids.acquire() if peer_cids is not None else None
        path = self._new_path(path_id, network_path, peer_cid, now)
        if peer_cid is None:
            # §"Path Initiation": no CID to answer with: abandon it on another path.
            self.abandon(path, PathAbandonCode.NO_CID_AVAILABLE_FOR_PATH, now)
            return path
        c._migration.start_challenge(path, now)
        issue_path_cids(self)
        return path

    def set_path_status(self, path_id: int, backup: bool, now: float = 0.0) -> None:
        """Signal PATH_STATUS_BACKUP / PATH_STATUS_AVAILABLE for a path; we follow our own
        signal too (a backup path carries data only when no available path is left)."""
        c = self._c
        path = c._paths.get(path_id)
        if not c._mp or path is None or not path.usable:
            raise PathError(f"no open path {path_id}")
        self._send_status(path, backup, now)

    def _send_status(self, path: Path, backup: bool, now: float) -> None:
        c = self._c
        path.local_status_seq += 1
        path.local_backup = backup
        frame_cls = PathStatusBackupFrame if backup else PathStatusAvailableFrame
        c._control.push(FrameRecord(frame_cls(path.path_id, path.local_status_seq)))
        c._queue_event(PathStatusChanged(path.path_id, backup, by_peer=False))

    def abandon_path(self, path_id: int, error_code: int = PathAbandonCode.APPLICATION_ABANDON_PATH,
                     now: float = 0.0) -> None:
        """Close one path with PATH_ABANDON (§"Path Close"); its unacknowledged data is
        resent on the other paths.  Abandoning the last open path closes the connection."""
        c = self._c
        path = c._paths.get(path_id)
        if not c._mp or path is None or path.state == PathState.ABANDONED:
            raise PathError(f"no open path {path_id}")
        self.abandon(path, error_code, now)
        if not c._paths.open_paths():
            c.close(0, "last path abandoned", application=False)

    def fail_path(self, path: Path, reason: str, now: float) -> None:
        """Failover: reinject at once, then PATH_ABANDON(PATH_UNSTABLE_OR_POOR)."""
        c = self._c
        path.state = PathState.FAILED
        c._queue_event(PathFailed(path.path_id, reason))
        self.abandon(path, PathAbandonCode.PATH_UNSTABLE_OR_POOR, now)

    def abandon(self, path: Path, error_code: int, now: float, by_peer: bool = False) -> None:
        c = self._c
        if path.state == PathState.ABANDONED:
            return
        path.state = PathState.ABANDONED
        path.challenge_pending = False
        path.challenge_deadline = None
        path.responses.clear()
        path.copies.clear()
        # §"Path Close": the CIDs the peer gave us for the path are retired at once.
        peer_cids = c._cids.peer.get(path.path_id)
        if path.path_id != 0:
            c._cids.peer.pop(path.path_id, None)
        elif peer_cids is not None:
            peer_cids.reset_tokens.clear()
        path.peer_cid = None
        # The frames are connection-level: what was in flight is sent again elsewhere.
        for packet in path.recovery.take_all_in_flight():
            c._streams.on_packet_lost(packet, path)
        c._paths.hooks.on_path_closed(path)
        release_controller(path.recovery.controller)
        if not path.abandon_sent:
            path.abandon_sent = True
            c._control.push(FrameRecord(PathAbandonFrame(path.path_id, int(error_code))))
        # Keep the receive state 3 PTO (§"Path Close") for reordered packets.
        path.abandon_deadline = now + 3 * c._timers.pto()
        c._queue_event(PathAbandoned(path.path_id, int(error_code), by_peer))

    def _forget(self, path: Path) -> None:
        """The retention time is over: drop the path and the CIDs we issued for it, and
        give the peer one more path ID (MAX_PATH_ID) so that as many paths as configured
        can be open again: path IDs are never reused (§"Path Close"), so a link that
        flaps would otherwise run out of them (§"Issuing New Connection IDs")."""
        c = self._c
        c._paths.remove(path.path_id)
        if c._qlog is not None:
            c._qlog.path_updated(path.path_id, "closed")
        if self.local_max < MAX_PATH_ID_LIMIT:
            self.local_max += 1
            c._control.push(FrameRecord(MaxPathIdFrame(self.local_max)))
        # Path 0's CIDs stay routable while the connection lives (as without multipath).
        cids = c._cids.local.get(path.path_id) if path.path_id else None
        if cids is not None:
            for entry in cids.active:
                c._cids.index.pop(entry.cid, None)
                c._queue_event(ConnectionIdRetired(entry.cid, entry.sequence_number,
                                                      path.path_id))
        issue_path_cids(self)

    def queue_copies(self, target: Path, records: Sequence[Record]) -> None:
        """Queue another copy of these STREAM records on ``target``'s own front of queue
        (docs/schedulers.md ``select_many`` and ``reinjections``): they leave on that
        path, ahead of new data, the next time it builds a packet -- not through the
        connection's retransmission queue, which any path could drain.  The originals
        stay in flight (draft-ietf-quic-multipath §"Retransmissions", strategy b)."""
        copies = target.copies
        copies.extend(r for r in records if isinstance(r, StreamRecord))
        if len(copies) > MAX_PATH_COPIES:
            # Bounded: a copy is optional (the original is still in flight), the
            # oldest ones are the least useful.
            del copies[: len(copies) - MAX_PATH_COPIES]

    def add_copies(self, draft: Any, path: Path, room: int) -> int:
        """STREAM frames for ``path.copies`` into ``draft`` (built from the stream's send
        buffer; ranges acknowledged meanwhile are skipped); returns the bytes used."""
        c = self._c
        copies = path.copies
        streams = c._streams.send
        used = 0
        while copies:
            space = room - used
            if space < 24:
                break
            record = copies[0]
            stream_id, offset, length, fin = record
            stream = streams.get(stream_id)
            chunk = None if stream is None else stream.copy_range(
                offset, length, fin, space - 1 - varint_size(stream_id) - 16)
            if chunk is None:
                copies.pop(0)
                continue
            start, data, with_fin = chunk
            n = len(data)
            head = b"".join((bytes((0x0E | (0x01 if with_fin else 0),)),
                             encode_varint(stream_id), encode_varint(start), encode_varint(n)))
            draft.add(head + data, StreamRecord(stream_id, start, n, with_fin))
            used += len(head) + n
            end = offset + length
            if start + n >= end:
                copies.pop(0)
            else:  # the rest of the range in the next packet of this path
                copies[0] = StreamRecord(stream_id, start + n, end - start - n, fin)
        return used

    def deadlines(self) -> list[float]:
        c = self._c
        out: list[float] = []
        for path in c._paths:
            if path.abandon_deadline is not None:
                out.append(path.abandon_deadline)
            if path.keepalive_at is not None:
                out.append(path.keepalive_at)
        reinject = c._paths.hooks.next_reinjection_time()
        if reinject is not None:
            out.append(reinject)
        paths = c._paths
        if len(paths) > 1 and paths.policy.suspect_silent_paths:
            for path in paths:
                silent = silence_deadline(path, paths)
                if silent is not None:
                    out.append(silent)
        return out

    def on_timeout(self, now: float) -> None:
        c = self._c
        paths = c._paths
        keepalive = paths.policy.backup_keepalive
        for path in paths:
            if path.abandon_deadline is not None:
                if now >= path.abandon_deadline:
                    self._forget(path)
                continue
            if paths.failed_path(path):
                self.fail_path(path, f"{path.recovery.pto_count} PTOs without an ACK", now)
                if not paths.open_paths():
                    c.close(0, "every path failed", application=False)
                continue
            # A backup path is kept validated and alive with a PING now and then.
            if keepalive is not None and path.is_backup and path.validated:
                if path.keepalive_at is None:
                    path.keepalive_at = now + keepalive
                elif now >= path.keepalive_at:
                    path.keepalive_at = now + keepalive
                    if path.recovery.bytes_in_flight == 0:
                        path.space.probe_packets = max(path.space.probe_packets, 1)
            else:
                path.keepalive_at = None
        self._check_silence(now)
        self._probe_alternatives(now)
        hooks = paths.hooks
        when = hooks.next_reinjection_time()
        if when is not None and now >= when:
            for item in hooks.reinjections(paths.schedulable(), now):
                frames: list[Record] = item.packet.frames  # type: ignore[assignment]
                self.queue_copies(item.target, frames)
                # Other retransmittable frames (control) are cheap to repeat anywhere.
                rest = [r for r in frames if not isinstance(r, StreamRecord)]
                if rest:
                    c._streams.on_records_lost(rest, item.source)

    def on_pto(self, path: Path, now: float) -> None:
        """§"PTO Expiration": the stream data of a path whose PTO fired is sent again on
        the other paths at once if one of them is fine (the originals stay in flight;
        whichever copy is acknowledged first completes the data).  A suspect path's data
        was sent again when it fell silent."""
        c = self._c
        if path.recovery.pto_count != 1 or path.suspect_since is not None or not any(
                p is not path and p.usable and p.validated and p.recovery.pto_count == 0
                for p in c._paths):
            return
        self._resend_in_flight(path)

    def _resend_in_flight(self, path: Path) -> None:
        """Queue the stream data in flight on ``path`` to be sent again on any path
        (retransmissions go before new data); the originals stay in flight."""
        c = self._c
        streams = c._streams.send
        queue = c._streams.send_queue
        for packet in path.recovery.in_flight_packets(SpaceId.APPLICATION):
            if packet.resent:
                continue
            packet.resent = True
            for record in packet.frames:
                if isinstance(record, StreamRecord):
                    stream = streams.get(record.stream_id)
                    if stream is not None:
                        stream.on_lost(record.offset, record.length, record.fin)
                        queue[record.stream_id] = None

    def _check_silence(self, now: float) -> None:
        """Suspect every path that stayed silent past its deadline while the others were
        acknowledged: no new data on it, its in-flight data sent again, a probe."""
        c = self._c
        paths = c._paths
        if len(paths) < 2 or not paths.policy.suspect_silent_paths:
            return
        for path in paths:
            deadline = silence_deadline(path, paths)
            if deadline is not None and now >= deadline:
                self._suspect(path, now)

    def _suspect(self, path: Path, now: float) -> None:
        c = self._c
        path.suspect_since = now
        logger.info("%s path %d silent %.0f ms past its ACK (ACKs every %.1f ms, min RTT %.1f ms) "
                    "while other paths are acknowledged: suspect; its data in flight goes "
                    "again on the others", "client" if c._is_client else "server",
                    path.path_id, (now - (ack_due_since(path) or now)) * 1000,
                    (path.ack_spacing or 0.0) * 1000, path.recovery.rtt.min_rtt * 1000)
        self._resend_in_flight(path)
        path.space.probe_packets = max(path.space.probe_packets, 1)
        if c._qlog is not None:
            c._qlog.path_updated(path.path_id, "suspect")

    def on_path_acked(self, path: Path, now: float) -> None:
        """An ACK acknowledged packets of ``path``: its ACK clock, the end of its
        suspicion, and the other paths' silence measured against it."""
        c = self._c
        if note_ack(path, now):
            logger.info("%s path %d acknowledged again: no longer suspect",
                        "client" if c._is_client else "server", path.path_id)
            if c._qlog is not None:
                c._qlog.path_updated(path.path_id, "active")
        if c._mp:
            self._check_silence(now)

    def _probe_alternatives(self, now: float) -> None:
        """A path in PTO is suspect: an idle path (a backup one, typically) gets a PING so
        that a fresh ACK proves it alive, and the failure rule can act on evidence."""
        c = self._c
        suspects = [p for p in c._paths if p.usable and p.validated
                    and p.recovery.pto_count >= 1]
        if not suspects:
            return
        newest = max((p.last_ack_time or 0.0) for p in suspects)
        for path in c._paths:
            if (path in suspects or not path.usable or not path.validated
                    or path.peer_cid is None or path.recovery.bytes_in_flight):
                continue
            if path.last_ack_time is None or path.last_ack_time <= newest:
                path.space.probe_packets = max(path.space.probe_packets, 1)

    def path_stats(self, now: float = 0.0) -> list[PathStats]:
        """A frozen snapshot per path (RTT, window, counters, goodput)."""
        c = self._c
        return c._paths.stats(now)

    def check_id(self, path_id: int, frame_type: int) -> None:
        # §"New Frames": a path ID above the maximum we announced is a PROTOCOL_VIOLATION.
        if path_id > self.local_max:
            raise QuicError(PV, f"path ID {path_id} above our maximum {self.local_max}",
                            frame_type=frame_type)

__all__ = ["Epoch", "Multipath", "PathError"]

"""Timers of the connection: when ``handle_timeout`` must run next, and what runs
when it does.

One deadline per connection is handed to the I/O layer (DESIGN.md "The sans-I/O
contract"): the earliest of the idle timeout (RFC 9000 §10.1, at least three PTOs),
the closing/draining period (§10.2), each packet-number space's ACK delay
(§13.2.1), each path's loss-detection/PTO timer (RFC 9002 §6.1, §6.2), path
validation (RFC 9000 §8.2.1), PMTU probing (RFC 8899), pacing (RFC 9002 §7.7),
discarding old 1-RTT keys (RFC 9001 §6.5) and the multipath and preferred-address
timers.  ``Timers.pto`` is the connection's PTO: with multipath the largest of its paths'
(draft-ietf-quic-multipath §"Connection Closure", §"Key Update").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tquic.core.conn_base import ConnState, Epoch
from tquic.core.events import IDLE_TIMEOUT_REASON, ConnectionTerminated
from tquic.core.records import CryptoRecord, FrameRecord
from tquic.paths.path import Path
from tquic.wire.epochs import SpaceId, space_of
from tquic.wire.errors import QuicError, TransportErrorCode

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection
    from tquic.core.crypto_levels import CryptoLevels


class Timers:
    """The connection's one deadline and what runs when it passes.  Owns the idle
    timer (RFC 9000 §10.1); every other deadline is read from the component or path
    that owns it."""

    __slots__ = ("_c", "_crypto", "idle_at", "idle_restarted_at", "idle_timeout")

    def __init__(self, conn: QuicConnection, crypto: CryptoLevels) -> None:
        self._c = conn
        self._crypto = crypto
        self.idle_at: float | None = None
        self.idle_restarted_at: float | None = None  # set per packet; idle_at follows lazily
        self.idle_timeout: float = conn._config.idle_timeout  # the negotiated one once known

    def pto(self) -> float:
        c = self._c
        if not c._paths:
            return 3 * c._config.initial_rtt
        if len(c._paths) == 1:
            return float(c._paths.primary.recovery.pto_period())
        # multipath: the largest PTO among the paths (§"Connection Closure", §"Key Update").
        return max(float(p.recovery.pto_period()) for p in c._paths)

    def restart_idle_timer(self, now: float) -> None:
        # Runs for every packet received: only the time is noted here, and the deadline
        # (which needs the PTO) is computed when next asked for.  That gives the same
        # deadline: the PTO only changes with an RTT sample or the set of paths, on a
        # received packet (which restarts the timer after its frames) or in
        # handle_timeout (which computes the deadline first).
        self.idle_restarted_at = now

    def idle_deadline(self) -> float | None:
        restarted = self.idle_restarted_at
        if restarted is not None:
            self.idle_restarted_at = None
            idle = self.idle_timeout
            # RFC 9000 §10.1: at least three PTOs, so probes can be sent before timing out.
            self.idle_at = restarted + max(idle, 3 * self.pto()) if idle > 0 else None
        return self.idle_at

    def previous_keys_keep(self) -> float:
        """How long to keep the previous 1-RTT receive keys after a key update (RFC 9001
        §6.5: three PTOs)."""
        return 3 * self.pto()

    def next_timeout(self) -> float | None:
        """When ``handle_timeout`` must be called next (None: no timer)."""
        c = self._c
        state = c._state
        if state == ConnState.TERMINATED:
            return None
        if state >= ConnState.CLOSING:
            return c._close_deadline
        deadlines: list[float] = []
        idle_deadline = self.idle_deadline()
        if idle_deadline is not None:
            deadlines.append(idle_deadline)
        crypto = self._crypto
        if crypto.spaces:  # until the handshake is confirmed
            deadline = crypto.handshake_ack_deadline()
            if deadline is not None:
                deadlines.append(deadline)
        for path in c._paths:
            loss = path.recovery.loss_detection_deadline()
            if loss is not None:
                deadlines.append(loss)
            if crypto.one_rtt is not None:
                deadline = path.space.ack_tracker.ack_deadline()
                if deadline is not None:
                    deadlines.append(deadline)
            if path.challenge_deadline is not None:
                deadlines.append(path.challenge_deadline)
            if path.pmtud is not None:
                deadline = path.pmtud.next_deadline()
                if deadline is not None:
                    deadlines.append(deadline)
        pacing = c._builder.pacing_deadline
        if pacing is not None and (c._streams.send_queue or c._datagrams):
            deadlines.append(pacing)
        keys = crypto.one_rtt
        if keys is not None and keys.prev_expiry is not None:
            deadlines.append(keys.prev_expiry)
        if c._mp:
            deadlines.extend(c._multipath.deadlines())
        preferred = c._preferred.deadline()
        if preferred is not None:
            deadlines.append(preferred)
        return min(deadlines) if deadlines else None

    def handle_timeout(self, now: float) -> None:
        """Run the timers that are due at ``now``.  Never raises."""
        c = self._c
        try:
            self._run(now)
        except QuicError as exc:
            c._close_on_error(exc, now)
        except Exception as exc:
            c._internal_error(exc, now)

    def _run(self, now: float) -> None:
        c = self._c
        state = c._state
        if state == ConnState.TERMINATED:
            return
        if state >= ConnState.CLOSING:
            if c._close_deadline is not None and now >= c._close_deadline:
                c._state = ConnState.TERMINATED
            return
        idle_deadline = self.idle_deadline()
        if idle_deadline is not None and now >= idle_deadline:
            # RFC 9000 §10.1: silently close.
            c._state = ConnState.TERMINATED
            c._queue_event(ConnectionTerminated(TransportErrorCode.NO_ERROR, None,
                                                   IDLE_TIMEOUT_REASON, by_peer=False))
            return
        for path in c._paths:
            fired = self._run_loss_timer(path, now)
            if fired == "loss":
                # RFC 9002 Appendix A.8: once the loss time is cleared the PTO takes
                # over; one that is already due (it was shadowed by the loss time) runs
                # now rather than as a second timer at this same instant.
                self._run_loss_timer(path, now)
            if path.challenge_deadline is not None and now >= path.challenge_deadline:
                c._migration.on_validation_failed(path, now)
            elif (fired and path.challenge_deadline is not None and path.challenges
                  and path.challenge_retries < 3):
                # RFC 9000 §8.2.1: a new PATH_CHALLENGE when the path's PTO fires -- not at
                # every timer of the connection: pacing or a scheduler's timers would send
                # one every few ms and push the outstanding ones out of ``challenges``
                # (4 kept) before a slow path's response could come back.
                path.challenge_pending = True
                path.challenge_retries += 1
        keys = self._crypto.one_rtt
        if keys is not None:
            keys.discard_previous(now)
        if c._mp:
            c._multipath.on_timeout(now)
        if c._preferred.probe is not None:
            c._preferred.on_timeout(now)

    def _run_loss_timer(self, path: Path, now: float) -> str | None:
        """RFC 9002 Appendix A.9 OnLossDetectionTimeout for one path, if due: "loss"
        (time-threshold losses declared), "pto" (probes queued) or None (not due)."""
        c = self._c
        deadline = path.recovery.loss_detection_deadline()
        if deadline is None or now < deadline:
            return None
        outcome = path.recovery.on_loss_detection_timeout(now)
        for packet in outcome.lost:
            c._streams.on_packet_lost(packet, path)
        if c._qlog is not None:
            c._qlog.lost(now, path.path_id, outcome.lost, "time_threshold")
            c._qlog.metrics(now, path.recovery, path.path_id)
        if outcome.lost and c._paths.hooks.tracks_packets:
            c._paths.hooks.on_packets_lost(path, outcome.lost, now)
        if outcome.probe_space is not None and outcome.probe_packets:
            if outcome.probe_space == SpaceId.APPLICATION:
                path.space.probe_packets = outcome.probe_packets
                if c._mp:
                    c._multipath.on_pto(path, now)
                self._requeue_for_probe(path)
            else:
                epoch = (Epoch.INITIAL if outcome.probe_space == SpaceId.INITIAL
                         else Epoch.HANDSHAKE)
                space = self._crypto.spaces.get(epoch)
                if space is not None and not space.discarded:
                    space.probe_packets = outcome.probe_packets
                    self._requeue_crypto(epoch, path)
            return "pto"
        return "loss"

    def _requeue_for_probe(self, path: Path) -> None:
        """RFC 9002 §6.2.4: probes carry new data or a retransmission; PING otherwise."""
        c = self._c
        immediate = c._ack_frequency.on_probe()
        if immediate is not None:
            c._control.push(FrameRecord(immediate))

    def _requeue_crypto(self, epoch: int, path: Path) -> None:
        space_id = space_of(epoch)
        for packet in path.recovery.in_flight_packets(space_id):
            for record in packet.frames:
                if isinstance(record, CryptoRecord):  # probe with the unacknowledged handshake data
                    self._crypto.on_lost(record)

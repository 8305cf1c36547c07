"""The send loop: which datagrams leave now, on which path, in which order.

One loop for single-path and multipath (draft-ietf-quic-multipath): the
scheduler (paths/manager.py ``select``/``select_many``) picks the path of every
packet, and the packet builder (core/packet_builder.py) fills it.  Before the
scheduled packets go the ones that belong to one path or address: PATH_RESPONSE
to another address (RFC 9000 §8.2.2), the preferred-address probe (§9.6), what
one path owes under multipath (path validation, PTO probes, ACKs) and the PMTU
probe (RFC 8899 §4.4).

Trains: once nothing but DATAGRAM and STREAM data is pending on a path (no ACK
owed, no control, CRYPTO or path frame, no PTO probe, no Initial/Handshake keys,
no qlog), its packets are built by a short loop that takes the per-packet
decisions once and fills each packet as the general builder does (DATAGRAMs,
then STREAM data) -- the same packets (tests/core/test_batched_paths.py and
tests/core/test_send_loop.py check it),
gated by the congestion window and the pacer as every ack-eliciting packet is
(RFC 9002 §7, §7.7), with the packet-number length of RFC 9000 §17.1 and the
short header of §17.3.1.  With one path the train runs until the window, the
pacer or the data stop it; with several the scheduler still chooses the path of
each packet and the train builds that one packet (DESIGN.md "keep the
per-packet path short").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tquic.core.ack_writer import can_carry
from tquic.core.conn_base import ConnState, Epoch
from tquic.core.packet_builder import PacketBuilder
from tquic.core.packet_draft import PING, TAG, PacketDraft
from tquic.core.records import NOOP, PmtuProbeRecord, StreamRecord
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path
from tquic.wire.packet import encode_packet_number

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection

MAX_DATAGRAMS_PER_CALL = 512

Datagrams = list[tuple[bytes, NetworkPath]]


class SendLoop:
    """``datagrams_to_send`` of one connection: the order of the sends, the choice of
    path for each packet, and the stream-train fast path."""

    __slots__ = ("_builder", "_c", "_train_ok")

    def __init__(self, conn: QuicConnection, builder: PacketBuilder) -> None:
        self._c = conn
        self._builder = builder
        # Paths found ready for a stream train in this call (a positive answer holds
        # until something is received; a negative one may clear as ACKs are sent).
        self._train_ok: set[int] = set()

    def datagrams_to_send(self, now: float) -> Datagrams:
        """Datagrams to put on the wire now, each with the network path to send it on."""
        c = self._c
        state = c._state
        if state >= ConnState.DRAINING:
            return []
        out: Datagrams = []
        builder = self._builder
        try:
            if c._streams.undelivered:
                c._frame_handlers.deliver_pending()  # flow-control updates ride on what is built now
            builder.pacing_deadline = None
            if state == ConnState.CLOSING:
                if c._close_deadline is None:
                    c._close_deadline = now + 3 * c._timers.pto()
                if c._close_pending:
                    c._close_pending = False
                    primary = c._paths.primary
                    dgram = builder.build_datagram(primary, now, closing=True)
                    if dgram is not None:
                        out.append((dgram, primary.network_path))
                return out
            self._send_off_path_responses(now, out)
            if c._preferred.probe is not None:
                c._preferred.send(now, out)  # core/preferred_address.py
            if c._mp:
                self._send_path_specific(now, out, acks=False)
            # The PMTU probe goes first: built after the data it would never find room in
            # a congestion window the data keeps full (RFC 8899 §4.4: probes are congestion
            # controlled), and a lossy path would stay at 1200 bytes forever.
            probe = self._build_pmtu_probe(now)
            if probe is not None:
                out.append(probe)
            self._send_scheduled(now, out)
            if c._mp:
                # The ACKs still owed after the scheduled packets (each of those carried
                # its own path's): a path's ACK rides its data packet when it has one,
                # instead of a packet of its own just before it.
                self._send_path_specific(now, out)
        except Exception as exc:  # never let a bug escape the sans-I/O API
            c._internal_error(exc, now)
        return out

    # -- the scheduled packets ----------------------------------------------------------

    def _send_scheduled(self, now: float, out: Datagrams) -> None:
        """The scheduler picks the path of every packet (docs/schedulers.md); with
        ``select_many`` (redundant) the stream data of the packet built on the first
        path is queued again and sent on each other returned path at once."""
        c = self._c
        paths = c._paths
        hooks = paths.hooks
        builder = self._builder
        mp = c._mp
        if mp:
            self._publish_backlog()
            self._send_copies(now, out)
            # Which paths may carry new data changes only when something is received or
            # a timer fires, never while this loop sends.
            schedulable = paths.schedulable()
        self._train_ok.clear()
        stop = len(out) + MAX_DATAGRAMS_PER_CALL
        paced: frozenset[int] = frozenset()
        pending: list[Path] | None = None  # the scheduler's choice a train already asked for

        def reselect(last: Path) -> list[Path]:
            return paths.select_next(now, paced, schedulable, last)

        iterations = 0
        while iterations < MAX_DATAGRAMS_PER_CALL:
            iterations += 1
            if not mp and len(out) >= stop:
                break
            if mp:
                if pending is not None:
                    chosen, pending = pending, None
                else:
                    chosen = paths.select_many(now, paced, schedulable)
                if not chosen:
                    break
                path = chosen[0]
            else:
                one = paths.select(now)
                if one is None:
                    break
                path, chosen = one, [one]
            if len(chosen) == 1 and self._train_ready(path):
                # One packet per scheduler decision under multipath (the train asks the
                # scheduler again after each, and stays while it picks the same path).
                sent, pending = self._send_train(
                    path, now, out, stop if not mp else len(out) + 1 + MAX_DATAGRAMS_PER_CALL
                    - iterations, reselect if mp else None)
                if sent:
                    iterations += sent - 1
                    continue
            if len(chosen) > 1:
                builder.last_records = []
            dgram = builder.build_datagram(path, now)
            if dgram is None:
                if mp and not hooks.pacing_aware and path.recovery.can_send(
                        path.max_datagram_size) and (c._streams.send_queue or c._datagrams):
                    # Held back by its pacer, not by its window: the scheduler picks
                    # among the other paths (a window-based scheduler cannot see pacing).
                    paced = paced | {path.path_id}
                    continue
                break
            out.append((dgram, path.network_path))
            if len(chosen) == 1:
                continue
            copies = [r for r in builder.last_records if isinstance(r, StreamRecord)]
            for extra in chosen[1:]:
                if not copies or not extra.recovery.can_send(extra.max_datagram_size):
                    continue
                c._multipath.queue_copies(extra, copies)
                dup = builder.build_datagram(extra, now)
                if dup is not None:
                    out.append((dup, extra.network_path))

    def _publish_backlog(self) -> None:
        """Tell the scheduler hooks how much is queued (and whether its end is known)."""
        c = self._c
        backlog = 0
        ends_known = not c._datagrams
        for sid in c._streams.send_queue:
            stream = c._streams.send.get(sid)
            if stream is not None:
                backlog += stream.buffered
                ends_known = ends_known and stream.final_size is not None
        hooks = c._paths.hooks
        hooks.set_send_state(backlog + sum(map(len, c._datagrams)), c._streams.credit.available)
        hooks.set_remaining(backlog if ends_known else None)

    def _send_copies(self, now: float, out: Datagrams) -> None:
        """What was queued for one path since the last round: deadline reinjections,
        and datagrams preferring it (send_datagram's path_id)."""
        builder = self._builder
        datagrams = self._c._datagrams
        for path in self._c._paths.schedulable():
            while path.copies and len(out) < MAX_DATAGRAMS_PER_CALL:
                head = (len(path.copies), path.copies[0])
                dgram = builder.build_datagram(path, now)
                if dgram is None:
                    break
                out.append((dgram, path.network_path))
                if path.copies and (len(path.copies), path.copies[0]) == head:
                    break  # no room for them (window full): they wait for this path
            # Within its window and pacer; what it cannot take now goes to any path
            # (PacketBuilder._datagram_orphans).
            waiting = datagrams.pending_for(path.path_id)
            while waiting and len(out) < MAX_DATAGRAMS_PER_CALL:
                dgram = builder.build_datagram(path, now)
                if dgram is None:
                    break
                out.append((dgram, path.network_path))
                left = datagrams.pending_for(path.path_id)
                if left >= waiting:
                    break  # none of them fitted: they wait (or go elsewhere)
                waiting = left

    def _send_path_specific(self, now: float, out: Datagrams, acks: bool = True) -> None:
        """multipath: what must go on one particular path — PATH_CHALLENGE/RESPONSE
        (§"Path Initiation and Validation"), PTO probes and backup keep-alives — is sent
        before the scheduler distributes the rest; a path's owed ACK (``acks``) after
        it, in case a scheduled packet on that path took it along."""
        c = self._c
        if c._crypto.one_rtt is None:
            return
        for path in c._paths:
            if not path.usable or path.peer_cid is None:
                continue
            for _ in range(4):
                tracker = path.space.ack_tracker
                owed = (path.challenge_pending or path.space.probe_packets > 0 or (
                    bool(path.responses) and path.responses[0][1] == path.network_path)
                    or (acks and tracker.has_unacked and tracker.ack_due(now)))
                if not owed:
                    break
                # Data only in PTO probes of a path in use: the rest is the scheduler's.
                # A suspect path's probe is a PING: the data it would carry was just
                # queued again for the live paths (paths/silence.py).
                dgram = self._builder.build_datagram(
                    path, now, only_path_frames=not path.validated or path.is_backup
                    or path.space.probe_packets == 0 or path.suspect_since is not None)
                if dgram is None:
                    break
                out.append((dgram, path.network_path))

    # -- stream trains ------------------------------------------------------------------

    def _train_ready(self, path: Path) -> bool:
        """Whether the next packet on ``path`` can only carry DATAGRAM and STREAM frames:
        what the general builder would otherwise find (nothing in the Initial/Handshake
        spaces, no ACK or PATH_ACK owed, no path, control or CRYPTO frame, no copy, no
        probe, a validated path) holds until something is received, so most of it is
        checked once per call instead of once per packet."""
        c = self._c
        if not (c._streams.send_queue or c._datagrams) or c._control.records or path.copies:
            return False
        if path.path_id in self._train_ok:
            return True
        space = path.space
        ready = bool(
            c._handshake_confirmed and c._state == ConnState.CONNECTED and c._qlog is None
            and not c._control.handshake_done
            and Epoch.INITIAL not in c._crypto.send_keys and Epoch.HANDSHAKE not in c._crypto.send_keys
            and space.probe_packets == 0 and not path.responses
            and not path.challenge_pending and path.validated
            and not c._crypto.send_streams[Epoch.ONE_RTT].has_data_to_send())
        if ready and c._mp:
            # The PATH_ACKs this path would carry (core/ack_writer.py collect_path_acks).
            ready = not any(p.space.ack_tracker.has_unacked
                            and p.space.ack_tracker.ack_deadline() is not None
                            for p in c._paths if p is path or not can_carry(p))
        elif ready:
            # One path: the train runs without asking the scheduler, so a scheduler that
            # watches every packet sees them through the general loop instead.
            ready = space.ack_tracker.ack_deadline() is None and not c._paths.hooks.tracks_packets
        if ready:
            self._train_ok.add(path.path_id)
        return ready

    def _send_train(self, path: Path, now: float, out: Datagrams, stop: int,
                    reselect: Callable[[Path], list[Path]] | None
                    ) -> tuple[int, list[Path] | None]:
        """Packets of DATAGRAM and STREAM frames only on ``path`` until ``stop`` datagrams
        are out or the window, the pacer or the data stop it (_train_ready said nothing
        else is pending): the packets the general builder would build.  With ``reselect``
        (multipath) the scheduler is asked after each packet and the train goes on
        only while it picks this path alone; its other answer is returned to be used
        as it is.  Returns (packets sent, that answer or None)."""
        c = self._c
        builder = self._builder
        recovery = path.recovery
        space = path.space
        network_path = path.network_path
        limit = min(path.max_datagram_size, c._peer_max_udp)  # validated: no 3x limit
        keys = c._crypto.one_rtt
        peer = path.peer_cid
        if keys is None or peer is None:
            return 0, None
        streams = c._streams
        dcid = peer.cid
        sent = 0
        chosen: list[Path] | None = None  # the scheduler's answer after the last packet
        control = c._control
        datagrams = c._datagrams
        while len(out) < stop and (streams.send_queue or datagrams) and not control.records:
            if recovery.bytes_in_flight + limit > recovery.controller.congestion_window:
                break  # recovery.can_send(limit), inlined: the window is full (RFC 9002 §7)
            when = recovery.next_send_time(now, limit)
            if when > now:
                builder.pacing_deadline = when
                break
            pn = space.next_pn
            largest_acked = space.largest_acked
            # encode_packet_number's length (RFC 9000 §17.1), without the call.
            unacked = pn + 1 if largest_acked is None else pn - largest_acked
            pn_len = (unacked.bit_length() + 8) >> 3
            if pn_len > 4:
                pn_len = 4
            header_len = 1 + len(dcid) + pn_len
            draft = PacketDraft(Epoch.ONE_RTT, space, path, dcid, pn, pn_len, header_len)
            # What PacketBuilder._add_app_payload fills a packet with when nothing else
            # is pending, in its order: DATAGRAMs, then STREAM data.
            room = limit - header_len - TAG
            if datagrams:
                room -= builder.add_datagrams(draft, room)
            builder.add_streams(draft, room)
            if not draft.parts:
                break
            if not streams.send_queue and not datagrams:
                recovery.on_app_limited()
            space.next_pn = pn + 1
            out.append((builder.seal([draft], path, now), network_path))
            sent += 1
            chosen = None
            if reselect is not None and len(out) < stop:
                chosen = reselect(path)
                # _train_ready(path) held for this path in this call (``_train_ok``); what
                # could change since is checked by the loop's condition, and copies here.
                if len(chosen) != 1 or chosen[0] is not path or path.copies:
                    break
        return sent, chosen

    # -- probes outside the scheduler ---------------------------------------------------

    def _send_off_path_responses(self, now: float, out: Datagrams) -> None:
        """PATH_RESPONSE to a probe from another address goes back to that address
        (RFC 9000 §8.2.2), padded to 1200 bytes (§8.2.1) and unmarked for ECN; its
        bytes do not count as the path's."""
        if self._c._crypto.one_rtt is None:
            return
        for path in self._c._paths:
            if not path.responses:
                continue
            keep: Datagrams = []
            for data, network_path in path.responses:
                if network_path == path.network_path:
                    keep.append((data, network_path))
                    continue
                draft = self._single_frame_draft(path)
                draft.add(b"\x1b" + data, NOOP)
                draft.padding = max(0, 1200 - draft.size)
                saved = path.bytes_sent
                out.append((self._builder.seal([draft], path, now, off_path=True),
                            network_path))
                path.bytes_sent = saved  # the bytes went to another address, not this path's
            path.responses = keep

    def _build_pmtu_probe(self, now: float) -> tuple[bytes, NetworkPath] | None:
        """A PING padded to the size being probed (RFC 8899 §4.1, RFC 9000 §14.3),
        congestion controlled (RFC 8899 §4.4), recorded so that its loss is not taken
        for congestion (core/pmtud.py decides the sizes)."""
        c = self._c
        if c._crypto.one_rtt is None or not c._handshake_confirmed:
            return None
        for path in c._paths:
            pmtud = path.pmtud
            if pmtud is None or not path.validated:
                continue
            size = pmtud.probe_size(now)
            if size is None or size > c._peer_max_udp:
                continue
            if not path.recovery.can_send(size):
                continue
            draft = self._single_frame_draft(path)
            draft.add(PING, PmtuProbeRecord(path.path_id, size))
            draft.padding = size - draft.size
            pmtud.on_probe_sent(size, now)
            return self._builder.seal([draft], path, now), path.network_path
        return None

    def _single_frame_draft(self, path: Path) -> PacketDraft:
        """A 1-RTT packet on ``path`` with its packet number taken."""
        space = path.space
        peer = path.peer_cid
        dcid = peer.cid if peer is not None else self._c._initial_dcid
        pn = space.next_pn
        _, pn_len = encode_packet_number(pn, space.largest_acked)
        space.next_pn = pn + 1
        return PacketDraft(Epoch.ONE_RTT, space, path, dcid, pn, pn_len, 1 + len(dcid) + pn_len)

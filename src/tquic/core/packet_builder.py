"""Packet building seam: fill packets with frames, coalesce them into datagrams,
protect them and hand them to the path's loss recovery.

Per datagram: Initial, Handshake, then 0-RTT/1-RTT packets (RFC 9000 §12.2),
padding a datagram with an ack-eliciting Initial to 1200 bytes (§14.1).  Per
packet: ACK first, then control frames, CRYPTO, DATAGRAMs and STREAM data
written straight into a list of byte strings joined once, so a full packet
costs one join and one AEAD call (DESIGN.md "Performance is designed in").
Ack-eliciting packets are gated by the congestion window and the pacer (RFC
9002 §7, §7.7), PTO probes are not (§6.2.4), and an unvalidated peer
address gets at most 3x the bytes it sent (RFC 9000 §8.1).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from tquic.core.ack_writer import AckWriter, can_carry
from tquic.core.conn_base import Epoch
from tquic.core.packet_draft import PING, TAG, PacketDraft, encode_one
from tquic.core.records import (
    NOOP,
    AckRecord,
    CryptoRecord,
    FrameRecord,
    Record,
    StreamRecord,
)
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import PacketSpace, Path
from tquic.paths.sent_packets import SentPacket
from tquic.wire.buffer import encode_varint, varint_size
from tquic.wire.epochs import SPACE_OF_EPOCH
from tquic.wire.frames import (
    ConnectionCloseFrame,
    stream_data_capacity,
)
from tquic.wire.packet import (
    PacketType,
    encode_long_header,
    encode_packet_number,
    long_header_size,
)

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection

MIN_INITIAL_DATAGRAM = 1200  # RFC 9000 §14.1
_tuple_new = tuple.__new__
_BYTES = tuple(bytes((i,)) for i in range(256))
_PN_MASK = (0, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF)
# A STREAM frame with the OFF and LEN bits (RFC 9000 §19.8) whose stream ID takes one
# varint byte, offset four and length two (§16): the usual frame of a bulk transfer.
_STREAM_HEAD_1_4_2 = struct.Struct("!BBIH").pack
# DATAGRAM type 0x31 (RFC 9221 §4) with a one- or two-byte Length.
_DATAGRAM_HEAD_1 = struct.Struct("!BB").pack
_DATAGRAM_HEAD_2 = struct.Struct("!BH").pack
_EPOCH_PACKET_TYPE: dict[int, PacketType] = {Epoch.INITIAL: PacketType.INITIAL, Epoch.HANDSHAKE: PacketType.HANDSHAKE,
                      Epoch.ZERO_RTT: PacketType.ZERO_RTT}


class PacketBuilder:
    """Builds, coalesces and protects the datagrams of one connection: the send loop
    (core/send_loop.py) asks it for a datagram on a path, and it fills the packets
    from the connection's queues (streams, control records, CRYPTO, DATAGRAMs) and
    the path's own frames.  It owns what building decides: the ACK writer, the
    pacing deadline it met, and the records of the last packet sealed."""

    __slots__ = ("_acks", "_c", "last_records", "pacing_deadline")

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn
        self._acks = AckWriter(conn._config.ack_delay_exponent)
        # When the pacer let nothing go (core/timers.py arms a timer for it).
        self.pacing_deadline: float | None = None
        # The records of the last 1-RTT packet sealed (redundant copies of its STREAM data).
        self.last_records: list[Record] = []

    @property
    def acks(self) -> AckWriter:
        return self._acks

    def _add_ack(self, draft: PacketDraft, now: float, room: int, force: bool) -> int:
        """Add an ACK if one is owed (``force``: only when one is due); returns bytes used."""
        c = self._c
        space = draft.space
        tracker = space.ack_tracker
        if not tracker.has_unacked or (force and not tracker.ack_due(now)):
            return 0
        built = self._acks.frame(space, now)
        if built is None or len(built[0]) > room:
            return 0
        data, largest = built
        draft.add(data, AckRecord(space, largest), ack_eliciting=False)
        tracker.on_ack_sent(now, largest)
        one_rtt = c._crypto.one_rtt
        if draft.epoch == Epoch.ONE_RTT and one_rtt is not None:
            one_rtt.on_ack_sent(largest)
        return len(data)

    def _datagram_limit(self, path: Path) -> int:
        c = self._c
        size = min(path.max_datagram_size, c._peer_max_udp)
        budget = path.amplification_budget()
        if budget is not None:
            size = min(size, budget)
        return size

    def build_datagram(self, path: Path, now: float, *, closing: bool = False,
                        network_path: NetworkPath | None = None,
                        only_path_frames: bool = False) -> bytes | None:
        c = self._c
        limit = self._datagram_limit(path)
        # RFC 9002 §6.2.2.1: the server arms no PTO while the amplification limit
        # blocks it; refresh the flag on every attempt so it clears once data arrives.
        blocked = limit < 64
        path.recovery.amplification_limited = blocked and path.amplification_budget() is not None
        if blocked:
            return None
        remaining = limit
        drafts: list[PacketDraft] = []
        pad_initial = False
        for epoch in (Epoch.INITIAL, Epoch.HANDSHAKE):
            if epoch in c._crypto.send_keys:
                draft = self._build_long(epoch, path, remaining, now, closing)
                if draft is not None:
                    drafts.append(draft)
                    remaining -= draft.size
                    if epoch == Epoch.INITIAL and (c._is_client or draft.ack_eliciting):
                        pad_initial = True
        if not closing or c._handshake_complete:
            draft = self._build_app(path, remaining, now, closing, only_path_frames)
            if draft is not None:
                drafts.append(draft)
        if not drafts:
            return None
        if pad_initial:
            total = sum(d.size for d in drafts)
            target = min(MIN_INITIAL_DATAGRAM, limit)
            if total < target:
                drafts[-1].padding += target - total
        return self.seal(drafts, path, now)

    def seal(self, drafts: list[PacketDraft], path: Path, now: float,
              off_path: bool = False) -> bytes:
        c = self._c
        out: list[bytes] = []
        recovery = path.recovery
        # RFC 9000 §13.4.2: the path's ECN mark, recorded per packet for validation;
        # a datagram to another address (``off_path``) leaves unmarked.
        ecn = recovery.ecn
        codepoint = 0 if off_path else ecn.codepoint
        for d in drafts:
            payload = b"".join(d.parts)
            pad = d.padding
            if d.payload_len + pad + d.pn_len < 4:  # header protection sample (RFC 9001 §5.4.2)
                pad = 4 - d.pn_len - d.payload_len
            if pad:
                payload += bytes(pad)
            epoch = d.epoch
            if epoch == Epoch.ONE_RTT:
                keys = c._crypto.one_rtt
                if keys is None:
                    raise RuntimeError("1-RTT packet drafted without 1-RTT keys")
                # encode_short_header (RFC 9000 §17.3.1: fixed bit, key phase, packet
                # number length; reserved and spin bits zero), inlined: once per packet.
                pn_len = d.pn_len
                header = b"".join((
                    _BYTES[(0x44 if keys.send_phase else 0x40) | (pn_len - 1)], d.dcid,
                    (d.pn & _PN_MASK[pn_len]).to_bytes(pn_len, "big")))
                packet = keys.send.protect(header, payload, d.pn, d.path.path_id)
                keys.on_packet_sent(d.pn, d.path.path_id)
                self.last_records = d.records
            else:
                token = c._token if epoch == Epoch.INITIAL and c._is_client else b""
                initial_cid = c._cids.local[0].initial
                scid = initial_cid.cid if initial_cid else b""
                header = encode_long_header(c._version, _EPOCH_PACKET_TYPE[epoch], d.dcid,
                                            scid, token, len(payload) + TAG, d.pn, d.pn_len)
                packet = c._crypto.send_keys[epoch].protect(header, payload, d.pn)
                if epoch == Epoch.ZERO_RTT:
                    c._zero_rtt_sent = True
            out.append(packet)
            size = len(packet)
            in_flight = d.ack_eliciting or pad > 0
            sent = SentPacket(d.pn, now, size, d.ack_eliciting, in_flight,
                              SPACE_OF_EPOCH[epoch], d.records)  # type: ignore[arg-type]
            if codepoint:
                sent.ecn = codepoint
                ecn.on_marked_sent(sent.space)
            recovery.on_packet_sent(sent, now)
            if c._qlog is not None:
                c._qlog.packet_sent(now, epoch, d.pn, size, d.path.path_id, d.records, pad,
                                    c._crypto.one_rtt.send_phase
                                    if epoch == Epoch.ONE_RTT and c._crypto.one_rtt else None,
                                    d.close)
            if d.ack_eliciting and epoch == Epoch.ONE_RTT and c._paths.hooks.tracks_packets:
                c._paths.hooks.on_packet_sent(path, sent, now)
            if d.ack_eliciting:
                if d.space.probe_packets:
                    d.space.probe_packets -= 1
                if c._activity_since_send:
                    c._activity_since_send = False
                    c._timers.restart_idle_timer(now)
            if epoch == Epoch.HANDSHAKE and c._is_client and Epoch.INITIAL in c._crypto.send_keys:
                # RFC 9001 §4.9.1: a client discards Initial keys when it first sends
                # a Handshake packet.
                c._handshake.discard_epoch(Epoch.INITIAL)
        datagram = b"".join(out) if len(out) > 1 else out[0]
        path.bytes_sent += len(datagram)
        return datagram

    # -- long header packets -----------------------------------------------------------

    def _build_long(self, epoch: int, path: Path, remaining: int, now: float,
                    closing: bool) -> PacketDraft | None:
        c = self._c
        space = c._crypto.spaces[epoch]
        crypto = c._crypto.send_streams[epoch]
        tracker = space.ack_tracker
        probe = space.probe_packets > 0
        has_crypto = crypto.has_data_to_send()
        if not (closing or probe or has_crypto or tracker.ack_due(now)):
            return None
        peer = path.peer_cid
        dcid = peer.cid if peer is not None else c._initial_dcid
        scid = c._cids.local[0].initial.cid if c._cids.local[0].initial else b""
        pn = space.next_pn
        _, pn_len = encode_packet_number(pn, space.largest_acked)
        token_len = len(c._token) if epoch == Epoch.INITIAL and c._is_client else None
        if epoch != Epoch.INITIAL:
            token_len = None
        header_len = long_header_size(len(dcid), len(scid), token_len, 1200, pn_len)
        room = remaining - header_len - TAG
        if room < 32:
            return None
        draft = PacketDraft(epoch, space, path, dcid, pn, pn_len, header_len)
        room -= self._add_ack(draft, now, room, force=False)
        if closing:
            self._add_close(draft, epoch)
        else:
            can_send = probe or path.recovery.can_send(remaining)
            if has_crypto and can_send:
                self._add_crypto(draft, epoch, room)
            if probe and not draft.ack_eliciting:
                draft.add(PING, NOOP)
        if not draft.parts:
            return None
        space.next_pn = pn + 1
        return draft

    def _add_crypto(self, draft: PacketDraft, epoch: int, room: int) -> int:
        c = self._c
        crypto = c._crypto.send_streams[epoch]
        used = 0
        while room - used > 16:
            offset = crypto.highest_sent
            cap = room - used - 1 - varint_size(offset) - 2
            chunk = crypto.next_chunk(cap)
            if chunk is None:
                break
            off, data, _ = chunk
            if not data:
                break
            frame = b"".join((b"\x06", encode_varint(off), encode_varint(len(data)), data))
            draft.add(frame, CryptoRecord(epoch, off, len(data)))
            used += len(frame)
        return used

    def _add_close(self, draft: PacketDraft, epoch: int) -> None:
        frame = self._c._close_frame
        if frame is None:
            frame = ConnectionCloseFrame(0, 0, b"", False)
        if frame.is_application and epoch in (Epoch.INITIAL, Epoch.HANDSHAKE):
            # RFC 9000 §10.2.3: an application close becomes APPLICATION_ERROR here.
            frame = ConnectionCloseFrame(0x0C, 0, b"", False)
        draft.add(encode_one(frame), None, ack_eliciting=False)
        draft.close = frame

    # -- application packets -------------------------------------------------------------

    def _build_app(self, path: Path, remaining: int, now: float,
                   closing: bool, only_path_frames: bool = False) -> PacketDraft | None:
        """One 0-RTT or 1-RTT packet for ``path``, or None: first whether anything may
        go (window and pacing, ACKs due, path frames, copies), then the frames in
        order of priority, then the ACKs in front."""
        c = self._c
        epoch = self._app_epoch(closing)
        if epoch is None:
            return None
        space = path.space
        probe = space.probe_packets > 0
        one_rtt_epoch = epoch == Epoch.ONE_RTT
        mp_acks = c._mp and one_rtt_epoch
        ack_due = self._app_ack_due(path, mp_acks, one_rtt_epoch, now)
        path_frames = bool(path.responses) or path.challenge_pending
        recovery = path.recovery
        can_send = probe or (
            (not only_path_frames and self._app_has_data(one_rtt_epoch))
            and self._pacing_allows(path, remaining, now))
        # Copies queued for this path (redundant, deadline) go now if the window has room:
        # they were scheduled onto this path on purpose, in this send round.
        copies = (bool(path.copies) and one_rtt_epoch and not only_path_frames
                  and not closing and recovery.can_send(remaining))
        if not (can_send or copies or closing or path_frames or ack_due):
            return None
        draft = self._app_draft(epoch, path)
        room = remaining - draft.header_len - TAG
        if room < 24:
            return None
        if closing:
            self._add_close(draft, epoch)
            space.next_pn = draft.pn + 1
            return draft
        ack = None
        path_acks: list[tuple[bytes, PacketSpace, int]] = []
        if mp_acks:
            room -= self._acks.collect_path_acks(c._paths, path, path_acks, now, room)
            room -= self._add_path_frames(draft, path, room)
        elif one_rtt_epoch:
            tracker = space.ack_tracker
            # Only ack-eliciting packets are worth an ACK (RFC 9000 §13.2.1); ACKing a
            # stream of ACK-only packets in every data packet would waste the space.
            if tracker.has_unacked and tracker.ack_deadline() is not None:
                ack = self._acks.frame(space, now)
                if ack is not None:
                    room -= len(ack[0])
            if path_frames:
                room -= self._add_path_frames(draft, path, room)
        if copies:
            room -= c._multipath.add_copies(draft, path, room)
        if can_send and not only_path_frames:
            room -= self._add_app_payload(draft, one_rtt_epoch, room)
        if probe and not draft.ack_eliciting:
            draft.add(PING, NOOP)
        self._put_acks_in_front(draft, ack, path_acks, ack_due, now)
        if not draft.parts:
            return None
        if draft.ack_eliciting and not probe and not c._streams.send_queue and not c._datagrams:
            recovery.on_app_limited()
        space.next_pn = draft.pn + 1
        return draft

    def _app_epoch(self, closing: bool) -> Epoch | None:
        """1-RTT once its keys may be used to send (the server sends 1-RTT before the
        handshake completes, RFC 9001 §4.1.2), 0-RTT for a client before that."""
        c = self._c
        if c._crypto.one_rtt is not None and (c._handshake_complete or not c._is_client):
            return Epoch.ONE_RTT
        if (c._is_client and Epoch.ZERO_RTT in c._crypto.send_keys
                and not c._handshake_complete and not closing):
            return Epoch.ZERO_RTT
        return None

    def _app_ack_due(self, path: Path, mp_acks: bool, one_rtt_epoch: bool,
                     now: float) -> bool:
        """Whether an ACK must leave now: of this path's space, or under multipath of
        any space whose ACKs this path carries."""
        c = self._c
        if mp_acks:
            return any(p.space.ack_tracker.has_unacked and p.space.ack_tracker.ack_due(now)
                       for p in c._paths if p is path or not can_carry(p))
        tracker = path.space.ack_tracker
        return one_rtt_epoch and tracker.has_unacked and tracker.ack_due(now)

    def _app_has_data(self, one_rtt_epoch: bool) -> bool:
        """Anything queued that an application-data packet carries."""
        c = self._c
        return bool(c._streams.send_queue) or bool(c._datagrams) or (
            one_rtt_epoch and (bool(c._control.records) or c._control.handshake_done
                               or c._crypto.send_streams[Epoch.ONE_RTT].has_data_to_send()))

    def _pacing_allows(self, path: Path, remaining: int, now: float) -> bool:
        """The congestion window has room and the pacer lets a packet go now; if only
        the pacer holds it back, when it may go is noted."""
        recovery = path.recovery
        if not recovery.can_send(remaining):
            return False
        when = recovery.next_send_time(now, remaining)
        if when <= now:
            return True
        self.pacing_deadline = when
        return False

    def _app_draft(self, epoch: Epoch, path: Path) -> PacketDraft:
        """An empty packet of ``epoch`` on ``path``: header sized, number reserved
        (next_pn advances only if the packet is sent)."""
        c = self._c
        space = path.space
        peer = path.peer_cid
        dcid = peer.cid if peer is not None else c._initial_dcid
        pn = space.next_pn
        _, pn_len = encode_packet_number(pn, space.largest_acked)
        if epoch == Epoch.ONE_RTT:
            header_len = 1 + len(dcid) + pn_len
        else:
            scid = c._cids.local[0].initial.cid if c._cids.local[0].initial else b""
            header_len = long_header_size(len(dcid), len(scid), None, 1200, pn_len)
        return PacketDraft(epoch, space, path, dcid, pn, pn_len, header_len)

    def _add_app_payload(self, draft: PacketDraft, one_rtt_epoch: bool, room: int) -> int:
        """Control frames, 1-RTT CRYPTO, DATAGRAMs, then STREAM data; each filler is
        called only when it has something queued.  Returns the bytes used."""
        c = self._c
        used = 0
        if one_rtt_epoch:
            control = c._control
            if control.records or control.handshake_done:
                used += control.write(draft, room - used, c._streams.control_frame)
            if c._crypto.send_streams[Epoch.ONE_RTT].has_data_to_send():
                used += self._add_crypto(draft, Epoch.ONE_RTT, room - used)
        if c._datagrams:
            used += self.add_datagrams(draft, room - used)
        if c._streams.send_queue:
            used += self.add_streams(draft, room - used)
        return used

    def _put_acks_in_front(self, draft: PacketDraft, ack: tuple[bytes, int] | None,
                           path_acks: list[tuple[bytes, PacketSpace, int]], ack_due: bool,
                           now: float) -> None:
        """The ACK frames go first in the packet."""
        c = self._c
        space = draft.space
        path_id = draft.path.path_id
        if ack is not None and (draft.parts or space.ack_tracker.ack_due(now)):
            # RFC 9000 §13.2.1: ACK-only packets only when an ACK is due; otherwise
            # piggyback on what is sent anyway.
            data, largest = ack
            draft.parts.insert(0, data)
            draft.payload_len += len(data)
            draft.records.append(AckRecord(space, largest))
            space.ack_tracker.on_ack_sent(now, largest)
            if c._crypto.one_rtt is not None:
                c._crypto.one_rtt.on_ack_sent(largest, path_id)
        if path_acks and (draft.parts or ack_due):
            for data, ack_space, largest in path_acks:
                draft.parts.insert(0, data)
                draft.payload_len += len(data)
                draft.records.append(AckRecord(ack_space, largest))
                ack_space.ack_tracker.on_ack_sent(now, largest)
                if c._crypto.one_rtt is not None and ack_space.path_id is not None:
                    c._crypto.one_rtt.on_ack_sent(largest, ack_space.path_id)

    def _add_path_frames(self, draft: PacketDraft, path: Path, room: int) -> int:
        c = self._c
        used = 0
        responses = path.responses
        while responses and responses[0][1] == path.network_path and room - used >= 9:
            data, _ = responses.pop(0)
            draft.add(b"\x1b" + data, NOOP)
            used += 9
        if path.challenge_pending and room - used >= 9:
            data = c._migration.new_challenge(path)
            draft.add(b"\x1a" + data, NOOP)
            used += 9
            # RFC 9000 §8.2.1: a datagram carrying PATH_CHALLENGE is expanded to 1200
            # bytes (when the amplification limit allows).
            budget = path.amplification_budget()
            target = 1200 if budget is None else min(1200, budget)
            draft.padding = max(draft.padding, target - draft.size)
        return used


    def add_datagrams(self, draft: PacketDraft, room: int) -> int:
        """DATAGRAM frames for a packet on ``draft.path``: those preferring it, those
        without a preference, then those whose preferred path cannot send (their
        ``orphans``, core/datagram_queue.py), each queue in order."""
        c = self._c
        datagrams = c._datagrams
        path_id = draft.path.path_id
        used = 0
        parts = draft.parts
        records = draft.records
        orphans = self._datagram_orphans(path_id) if datagrams.has_preferences else ()
        for queue in datagrams.queues_for(path_id, orphans):
            while queue:
                data = queue[0]
                n = len(data)
                # Type 0x31 (with Length, RFC 9221 §4) and the Length varint: one or two
                # bytes for the usual sizes (RFC 9000 §16).
                frame_len = n + (2 if n < 0x40 else 3 if n < 0x4000 else 1 + varint_size(n))
                if frame_len > room - used:
                    if not used and n > c.max_datagram_payload():
                        # Queued before a path with a smaller MTU joined: it can go on no
                        # packet of every path any more; drop it (RFC 9221 §5: unreliable).
                        # Asked only of a packet with no DATAGRAM yet (the next packet
                        # asks otherwise): a full packet is the usual case, per packet.
                        queue.popleft()
                        c.datagrams_dropped_too_big += 1
                        continue
                    break
                queue.popleft()
                # Header and payload as two parts (seal joins them once): the payload
                # is not copied here.
                parts.append(_DATAGRAM_HEAD_1(0x31, n) if n < 0x40
                             else _DATAGRAM_HEAD_2(0x31, n | 0x4000) if n < 0x4000
                             else b"\x31" + encode_varint(n))
                parts.append(data)
                records.append(NOOP)
                used += frame_len
        if used:
            draft.payload_len += used
            draft.ack_eliciting = True
        datagrams.tidy()
        return used

    def _datagram_orphans(self, path_id: int) -> list[int]:
        """Paths other than ``path_id`` that datagrams prefer but that cannot send now:
        not schedulable (gone, unvalidated, an unused backup, suspect) or window full.
        Without multipath every preference is moot."""
        c = self._c
        others = [p for p in c._datagrams.preferred_paths() if p != path_id]
        if not others or not c._mp:
            return others
        able = {p.path_id for p in c._paths.schedulable()
                if p.recovery.can_send(p.max_datagram_size)}
        return [p for p in others if p not in able]

    def add_streams(self, draft: PacketDraft, room: int) -> int:
        c = self._c
        queue = c._streams.send_queue
        if not queue:
            return 0
        streams = c._streams.send
        used = 0
        done: list[int] = []
        rotate: int | None = None
        parts = draft.parts
        records = draft.records
        for stream_id in queue:
            stream = streams.get(stream_id)
            if stream is None:
                done.append(stream_id)
                continue
            sid_bytes = encode_varint(stream_id) if stream_id >= 0x40 else _BYTES[stream_id]
            while True:
                space = room - used
                if space < 8:
                    break
                cap = stream_data_capacity(stream_id, stream.highest_sent, space)
                chunk = stream.next_chunk(cap)
                if chunk is None:
                    break
                offset, data, fin = chunk
                n = len(data)
                frame_type = 0x0A | (0x01 if fin else 0)
                if (0x4000 <= offset < 0x40000000 and 0x40 <= n < 0x4000
                        and stream_id < 0x40):
                    head = _STREAM_HEAD_1_4_2(frame_type | 0x04, stream_id,
                                              offset | 0x80000000, n | 0x4000)
                elif offset:
                    head = b"".join((_BYTES[frame_type | 0x04], sid_bytes,
                                     encode_varint(offset), encode_varint(n)))
                else:
                    head = b"".join((_BYTES[frame_type], sid_bytes, encode_varint(n)))
                parts.append(head)
                parts.append(data)
                size = len(head) + n
                used += size
                # tuple.__new__ directly: StreamRecord(...) costs a Python-level
                # __new__ call, once per packet in bulk transfer.
                records.append(_tuple_new(StreamRecord, (stream_id, offset, n, fin)))
            if not stream.has_data_to_send():
                done.append(stream_id)
            elif room - used < 8:
                rotate = stream_id
                break
            blocked = stream.take_blocked_signal()
            if blocked is not None:
                c._control.push(FrameRecord(_stream_data_blocked(stream_id, blocked)))
        if used:
            draft.payload_len += used
            draft.ack_eliciting = True
        for stream_id in done:
            queue.pop(stream_id, None)
        if rotate is not None and len(queue) > 1:
            # Round robin between streams, one packet's worth at a time.
            queue.pop(rotate)
            queue[rotate] = None
        credit = c._streams.credit
        if queue and credit.limit - credit.used == 0:  # credit.available, without the call
            blocked = credit.take_blocked_signal()
            if blocked is not None:
                from tquic.wire.frames import DataBlockedFrame

                c._control.push(FrameRecord(DataBlockedFrame(blocked)))
        return used


def _stream_data_blocked(stream_id: int, limit: int) -> Any:
    from tquic.wire.frames import StreamDataBlockedFrame

    return StreamDataBlockedFrame(stream_id, limit)

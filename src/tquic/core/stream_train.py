"""Stream-train seam of the packet builder: the steady state of a bulk sender.

Once a packet has been built and nothing but STREAM data is pending on a validated
path (no ACK owed, no control, CRYPTO, DATAGRAM or path frame, no PTO probe, no
Initial/Handshake keys, no multipath, no qlog), the next packets are built in one
loop that takes the per-packet decisions once: the same packets _build_datagram
would build (tests/core/test_batched_paths.py checks it), gated by the congestion
window and the pacer as every ack-eliciting packet is (RFC 9002 §7, §7.7), with the
packet-number length of RFC 9000 §17.1 and short headers of §17.3.1.  A performance
seam: DESIGN.md "keep the per-packet path short".
"""

from __future__ import annotations

from tquic.core.conn_base import ConnectionBase, ConnState, Epoch
from tquic.core.packet_builder import TAG, PacketDraft
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path


class StreamTrainMixin(ConnectionBase):
    """_stream_train_ready and _send_stream_train, called by datagrams_to_send."""

    _peer_max_udp: int
    _pacing_deadline: float | None

    def _stream_train_ready(self, path: Path) -> bool:
        """Whether the next packets on ``path`` can only carry STREAM frames: what
        _build_datagram and _build_app would otherwise find for each of them (nothing in
        the Initial/Handshake spaces, no ACK owed, no path, control, CRYPTO or DATAGRAM
        frame, no probe, a validated path) holds until something is received, so it is
        checked once per train instead of once per packet."""
        space = path.space
        return bool(
            self._send_queue and self._handshake_confirmed and not self._mp
            and self._state == ConnState.CONNECTED and self._qlog is None
            and not self._control and not self._handshake_done_pending
            and not self._datagrams and not self._paths.hooks.tracks_packets
            and Epoch.INITIAL not in self._send_keys and Epoch.HANDSHAKE not in self._send_keys
            and space.probe_packets == 0 and space.ack_tracker.ack_deadline() is None
            and not path.responses and not path.challenge_pending and not path.copies
            and path.validated
            and not self._crypto_send[Epoch.ONE_RTT].has_data_to_send())

    def _send_stream_train(self, path: Path, now: float, out: list[tuple[bytes, NetworkPath]],
                           stop: int) -> None:
        """Packets of STREAM frames only, while the window, the pacer and the streams
        allow (_stream_train_ready said nothing else is pending): the same packets
        _build_datagram would build, with the per-packet decisions taken once."""
        recovery = path.recovery
        space = path.space
        network_path = path.network_path
        limit = min(path.max_datagram_size, self._peer_max_udp)  # validated: no 3x limit
        keys = self._one_rtt
        peer = path.peer_cid
        if keys is None or peer is None:
            return
        dcid = peer.cid
        while len(out) < stop and self._send_queue and not self._control:
            if not recovery.can_send(limit):
                return
            when = recovery.next_send_time(now, limit)
            if when > now:
                self._pacing_deadline = when
                return
            pn = space.next_pn
            largest_acked = space.largest_acked
            # encode_packet_number's length (RFC 9000 §17.1), without the call.
            unacked = pn + 1 if largest_acked is None else pn - largest_acked
            pn_len = min(4, (unacked.bit_length() + 8) >> 3)
            header_len = 1 + len(dcid) + pn_len
            draft = PacketDraft(Epoch.ONE_RTT, space, path, dcid, pn, pn_len, header_len)
            self._add_streams(draft, limit - header_len - TAG)
            if not draft.parts:
                return
            if not self._send_queue and not self._datagrams:
                recovery.on_app_limited()
            space.next_pn = pn + 1
            out.append((self._seal([draft], path, now), network_path))

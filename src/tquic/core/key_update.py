"""1-RTT keys with key update (RFC 9001 §6; "quicv2 ku" for v2 via PacketProtection).

Holds the current send keys and three sets of receive keys: current, next
(precomputed, so there is no timing signal, §6.3) and previous (kept for
delayed packets until a deadline the engine sets, about 3 PTO, §6.5).
The Key Phase bit, visible after header protection is removed, picks the
keys.  Error cases (KEY_UPDATE_ERROR, RFC 9001 §6.2, §6.4):

- a peer that updates twice before we acknowledged its first update in a
  packet protected with the new keys;
- a packet that opens with older keys although newer keys were already used
  for a lower packet number.
"""

from __future__ import annotations

from collections.abc import Callable

from tquic.crypto.protection import DecryptionError, PacketBytes, PacketProtection
from tquic.wire.errors import QuicError, TransportErrorCode


class KeyUpdateNotAllowed(Exception):
    """``request_key_update`` while RFC 9001 §6.1 forbids initiating one."""


class OneRttKeys:
    """Packet protection of the 1-RTT epoch across key phases."""

    __slots__ = (
        "_first_sent_in_phase",
        "_peer_update_pn",
        "_phase_acked",
        "_phase_start_pn",
        "phase_acked_at",
        "prev_expiry",
        "recv",
        "recv_next",
        "recv_phase",
        "recv_prev",
        "send",
        "send_phase",
        "updates",
    )

    def __init__(self, send: PacketProtection, recv: PacketProtection) -> None:
        self.send = send
        self.send_phase = 0
        self.recv = recv
        self.recv_next = recv.next_generation()
        self.recv_prev: PacketProtection | None = None
        self.recv_phase = 0
        self.prev_expiry: float | None = None
        # Packet numbers are per path with multipath (draft-ietf-quic-multipath §"Key
        # Phase Update Process"), so every comparison below is made within one path ID.
        self._phase_start_pn: dict[int, int] = {0: 0}  # lowest pn received per path
        self._first_sent_in_phase: dict[int, int] = {}
        self._phase_acked = False
        self.phase_acked_at: float | None = None  # when our current phase was first acked
        # An update by the peer not yet acknowledged by us: (path_id, pn).
        self._peer_update_pn: tuple[int, int] | None = None
        self.updates = 0

    # -- sending ---------------------------------------------------------------

    def on_packet_sent(self, packet_number: int, path_id: int = 0) -> None:
        if path_id not in self._first_sent_in_phase:
            self._first_sent_in_phase[path_id] = packet_number

    def on_ack_received(self, largest_acked: int, path_id: int = 0,
                        now: float | None = None) -> None:
        first = self._first_sent_in_phase.get(path_id)
        if first is not None and largest_acked >= first and not self._phase_acked:
            self._phase_acked = True
            self.phase_acked_at = now

    def on_ack_sent(self, largest_acknowledged: int, path_id: int = 0) -> None:
        """An ACK went out under the current send keys (§6.2 completes a peer's update)."""
        pending = self._peer_update_pn
        if pending is not None and pending[0] == path_id and largest_acknowledged >= pending[1]:
            self._peer_update_pn = None

    @property
    def can_initiate(self) -> bool:
        """§6.1: only after a packet of the current phase was acknowledged."""
        return self._phase_acked and self._peer_update_pn is None

    def initiate(self) -> None:
        """Start a key update (the caller checked the handshake is confirmed)."""
        if not self.can_initiate:
            raise KeyUpdateNotAllowed(
                "no packet of the current key phase acknowledged yet (RFC 9001 §6.1)")
        self._rotate_send()

    def _rotate_send(self) -> None:
        self.send = self.send.next_generation()
        self.send_phase ^= 1
        self._first_sent_in_phase = {}
        self._phase_acked = False
        self.updates += 1

    # -- receiving ---------------------------------------------------------------

    def unprotect(self, packet: PacketBytes, pn_offset: int, largest_pn: int, path_id: int,
                  now: float, prev_keep: float | Callable[[], float]
                  ) -> tuple[bytes, bytes, int]:
        """(plain header, payload, packet number); DecryptionError if it does not open.

        ``prev_keep`` is how long to keep the previous receive keys after an update, or
        a function computing it (asked only when the peer updates: the engine's costs a
        PTO computation, too much for every packet).
        """
        recv = self.recv
        header, pn = recv.open_header(packet, pn_offset, largest_pn)
        phase = (header[0] >> 2) & 1
        if phase == self.recv_phase:
            payload = recv.decrypt_payload(packet, header, pn, path_id)
            if path_id not in self._phase_start_pn:
                self._phase_start_pn[path_id] = pn
            return header, payload, pn
        prev = self.recv_prev
        start = self._phase_start_pn.get(path_id)
        if prev is not None and start is not None and pn < start:
            return header, prev.decrypt_payload(packet, header, pn, path_id), pn  # delayed
        try:
            payload = self.recv_next.decrypt_payload(packet, header, pn, path_id)
        except DecryptionError:
            if prev is not None and start is None:
                # First packet of this path since the update: nothing to compare its
                # packet number with, so an old-key packet is simply a delayed one.
                return header, prev.decrypt_payload(packet, header, pn, path_id), pn
            if prev is not None:
                try:
                    prev.decrypt_payload(packet, header, pn, path_id)
                except DecryptionError:
                    pass
                else:
                    raise QuicError(
                        TransportErrorCode.KEY_UPDATE_ERROR,
                        "old keys used after newer keys protected a lower packet number",
                    ) from None
            raise
        self._on_peer_phase_change(pn, now, prev_keep, path_id)
        return header, payload, pn

    def _on_peer_phase_change(self, pn: int, now: float,
                              prev_keep: float | Callable[[], float], path_id: int = 0) -> None:
        if self.send_phase == self.recv_phase:
            # The peer initiated (our send phase still equals the old receive phase).
            if self._peer_update_pn is not None:
                raise QuicError(TransportErrorCode.KEY_UPDATE_ERROR,
                                "consecutive key updates without acknowledgment (§6.2)")
            self._rotate_send()
            self._peer_update_pn = (path_id, pn)
        self.recv_prev = self.recv
        self.prev_expiry = now + (prev_keep() if callable(prev_keep) else prev_keep)
        self.recv = self.recv_next
        self.recv_next = self.recv.next_generation()
        self.recv_phase ^= 1
        self._phase_start_pn = {path_id: pn}

    def release(self) -> None:
        """Drop the OpenSSL contexts of every key generation held (they share one
        header protection); each is rebuilt by the next packet that needs it."""
        for keys in (self.send, self.recv, self.recv_next, self.recv_prev):
            if keys is not None:
                keys.release()

    def discard_previous(self, now: float) -> None:
        """Drop the previous receive keys once their time is up (§6.5)."""
        if self.prev_expiry is not None and now >= self.prev_expiry:
            self.recv_prev = None
            self.prev_expiry = None

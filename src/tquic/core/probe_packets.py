"""Probe-packet seam of the packet builder: single-frame 1-RTT packets sent before
the scheduler fills the paths, outside the usual path and window logic.

- PATH_RESPONSE to a PATH_CHALLENGE that came from another address goes back to
  that address (RFC 9000 §8.2.2), padded to 1200 bytes (§8.2.1) and unmarked for
  ECN; its bytes do not count as the path's.
- PMTU probes: a PING padded to the size being probed (RFC 8899 §4.1, RFC 9000
  §14.3), congestion controlled (RFC 8899 §4.4), recorded so that its loss is
  not taken for congestion (core/pmtud.py decides the sizes).
"""

from __future__ import annotations

from tquic.core.conn_base import ConnectionBase, Epoch
from tquic.core.packet_builder import _PING, PacketDraft
from tquic.core.records import NOOP, PmtuProbeRecord
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path
from tquic.wire.packet import encode_packet_number


class ProbePacketsMixin(ConnectionBase):
    """_send_off_path_responses and _build_pmtu_probe, called by datagrams_to_send."""

    _peer_max_udp: int

    def _send_off_path_responses(self, now: float, out: list[tuple[bytes, NetworkPath]]) -> None:
        """PATH_RESPONSE to a probe from another address goes back to that address
        (RFC 9000 §8.2.2), padded to 1200 bytes within the amplification limit."""
        if self._one_rtt is None:
            return
        for path in self._paths:
            if not path.responses:
                continue
            keep: list[tuple[bytes, NetworkPath]] = []
            for data, network_path in path.responses:
                if network_path == path.network_path:
                    keep.append((data, network_path))
                    continue
                dgram = self._build_probe_response(path, data, network_path, now)
                if dgram is not None:
                    out.append((dgram, network_path))
            path.responses = keep

    def _build_probe_response(self, path: Path, data: bytes, network_path: NetworkPath,
                              now: float) -> bytes | None:
        space = path.space
        peer = path.peer_cid
        dcid = peer.cid if peer is not None else self._initial_dcid
        pn = space.next_pn
        _, pn_len = encode_packet_number(pn, space.largest_acked)
        draft = PacketDraft(Epoch.ONE_RTT, space, path, dcid, pn, pn_len, 1 + len(dcid) + pn_len)
        draft.add(b"\x1b" + data, NOOP)
        draft.padding = max(0, 1200 - draft.size)
        space.next_pn = pn + 1
        saved = path.bytes_sent
        dgram = self._seal([draft], path, now, off_path=True)
        path.bytes_sent = saved  # the bytes went to another address, not this path's
        return dgram

    def _build_pmtu_probe(self, now: float) -> tuple[bytes, NetworkPath] | None:
        if self._one_rtt is None or not self._handshake_confirmed:
            return None
        for path in self._paths:
            pmtud = path.pmtud
            if pmtud is None or not path.validated:
                continue
            size = pmtud.probe_size(now)
            if size is None or size > self._peer_max_udp:
                continue
            if not path.recovery.can_send(size):
                continue
            space = path.space
            peer = path.peer_cid
            dcid = peer.cid if peer is not None else self._initial_dcid
            pn = space.next_pn
            _, pn_len = encode_packet_number(pn, space.largest_acked)
            draft = PacketDraft(Epoch.ONE_RTT, space, path, dcid, pn, pn_len,
                                1 + len(dcid) + pn_len)
            draft.add(_PING, PmtuProbeRecord(path.path_id, size))
            draft.padding = size - draft.size
            space.next_pn = pn + 1
            pmtud.on_probe_sent(size, now)
            return self._seal([draft], path, now), path.network_path
        return None

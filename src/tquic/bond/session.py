"""One CONNECT-IP tunnel at run time: its datagram pipeline, reorder timer and capsules.

Shared by both daemons.  An :class:`IpTunnel` wraps the h3
:class:`~tquic.h3.tunnel.Tunnel` of an accepted ``connect-ip`` request:

- ``send_packet(packet)`` frames an IP packet into an HTTP Datagram (RFC 9484
  §6) through the :class:`~tquic.bond.pipeline.DatagramPipeline`; a packet
  that cannot fit gets an ICMP Packet Too Big back to its sender (§10.1);
- :meth:`run_datagrams` feeds received datagrams into the pipeline and keeps
  the reorder buffer's timer armed;
- :meth:`adapt` sets the reorder wait bound from the connection's paths
  (:func:`~tquic.bond.reorder.adaptive_bound`): RTT spread of the paths that
  carried data since the last call, 0 when one path carries everything;
- with the ``fec`` extension negotiated, a :class:`~tquic.bond.fec.stage.FecStage`
  in the pipeline (docs/fec.md): repairs for the classes ``fec`` protects,
  lost packets rebuilt before the reorder buffer; its timer is kept armed here.

Tunnel MTU: a QUIC DATAGRAM frame never spans packets (RFC 9221 §5); the engine's
``max_datagram_payload()`` is what fits one packet on the smallest validated MTU
among the connection's paths (1200 bytes until DPLPMTUD validates more, RFC 8899).
The IP packet's room is that minus the quarter stream ID (at most 2), the Context
ID (1) and our sequence number (4): :func:`tunnel_mtu_for`.  :meth:`IpTunnel.follow_limit`
keeps ``mtu`` on it: raised at once, lowered only after the smaller limit held for
:data:`LOWER_AFTER` (a path that just joined counts 1200 bytes for the round trip
its PMTUD needs; packets that do not fit meanwhile are dropped and counted, not
answered with a Packet Too Big that would shrink inner TCP for ten minutes).
IPv6 needs a link MTU of at least 1280 (RFC 8200 §5, RFC 9484 §10.2): the
daemons configure IPv6 on the TUN only while the tunnel MTU allows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from tquic.bond.config import ReorderConfig
from tquic.bond.fec.config import FecConfig
from tquic.bond.fec.session import FecSession
from tquic.bond.fec.stage import FecStage
from tquic.bond.packet import packet_too_big
from tquic.bond.pipeline import DatagramPipeline
from tquic.bond.reorder import ReorderBuffer, adaptive_bound
from tquic.h3.tunnel import Tunnel, TunnelClosed
from tquic.io.deadline_timer import DeadlineTimer

logger = logging.getLogger("tquic.bond")

QUIC_PACKET_FLOOR = 1200  # RFC 9000 §14: every path carries at least this
QUIC_OVERHEAD = 1 + 20 + 4 + 16  # short header with the longest CID and PN, AEAD tag
DATAGRAM_FRAME_OVERHEAD = 1 + 2  # DATAGRAM_WITH_LEN type, length varint
HTTP_DATAGRAM_OVERHEAD = 2 + 1  # quarter stream ID, Context ID
SEQ_OVERHEAD = 4
TUNNEL_MTU = (QUIC_PACKET_FLOOR - QUIC_OVERHEAD - DATAGRAM_FRAME_OVERHEAD
              - HTTP_DATAGRAM_OVERHEAD - SEQ_OVERHEAD)  # on 1200-byte packets: 1149
IPV6_MIN_MTU = 1280  # RFC 8200 §5
LOWER_AFTER = 1.0  # seconds a smaller datagram limit must hold before the MTU follows it


def tunnel_mtu_for(datagram_payload: int) -> int:
    """The largest IP packet that one QUIC DATAGRAM payload of ``datagram_payload``
    bytes carries as an HTTP Datagram with our sequence number."""
    return max(0, datagram_payload - HTTP_DATAGRAM_OVERHEAD - SEQ_OVERHEAD)


def max_tunnel_mtu(max_udp_payload: int) -> int:
    """The tunnel MTU on paths that validated ``max_udp_payload`` (the PMTUD ceiling):
    what the server's shared TUN is set to (each tunnel answers for its own MTU)."""
    return tunnel_mtu_for(max_udp_payload - QUIC_OVERHEAD - DATAGRAM_FRAME_OVERHEAD)


class IpTunnel:
    """The data plane of one tunnel; ``deliver(packet)`` receives each IP packet."""

    def __init__(self, tunnel: Tunnel, deliver: Callable[[bytes], None], *,
                 extensions: dict[str, int], reorder: ReorderConfig,
                 router_address: Callable[[int], bytes | None],
                 mtu: int = TUNNEL_MTU, fec: FecConfig | None = None) -> None:
        from tquic.bond.extensions import FEC, SEQ

        self.tunnel = tunnel
        self.extensions = dict(extensions)
        self.mtu = mtu
        self._deliver = deliver
        self._reorder_config = reorder
        self._router_address = router_address
        self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(self._loop, self._expire)
        self.send_errors = 0
        self._lower_since: float | None = None
        buffer = ReorderBuffer(deliver)
        self.pipeline = DatagramPipeline(self._send_datagram, deliver,
                                         seq_context=self.extensions.get(SEQ), reorder=buffer,
                                         send_on=self._send_datagram)
        self._history: deque[dict[int, int]] = deque()
        self._stretch = 1.0
        self._late_seen = 0
        self.fec: FecStage | None = None
        self._fec_timer = DeadlineTimer(self._loop, self._fec_expire)
        self._fec_sending = False
        self._fec_byte = b""
        if FEC in self.extensions:
            # Decoding is always on once negotiated; sending follows our [fec] table
            # (none: nothing protected by us, and the stage stays off our send path).
            config = fec if fec is not None else FecConfig(enabled=False)
            self.fec = FecStage(
                FecSession(config), self.extensions[FEC], self.extensions.get(SEQ),
                self._send_raw, mtu + 1 + SEQ_OVERHEAD)  # the largest datagram
            self._fec_sending = config.enabled
            self._fec_byte = bytes((self.extensions[FEC],))  # a 1-byte Context ID (< 64)
            self.pipeline.add_stage(self.fec, outbound=config.enabled)

    def follow_limit(self, datagram_payload: int, now: float) -> bool:
        """Keep ``mtu`` on the connection's DATAGRAM limit (see the module docstring);
        True when it changed."""
        target = max(576, tunnel_mtu_for(datagram_payload))  # RFC 791: 576 always
        if target >= self.mtu:
            self._lower_since = None
            if target == self.mtu:
                return False
        elif self._lower_since is None:
            self._lower_since = now
            return False
        elif now - self._lower_since < LOWER_AFTER:
            return False
        self._lower_since = None
        self.mtu = target
        if self.fec is not None:
            self.fec.set_max_datagram(target + 1 + SEQ_OVERHEAD)
        return True

    # -- sending ---------------------------------------------------------------------

    def send_packet(self, packet: bytes) -> None:
        if len(packet) > self.mtu:
            self.pipeline.counters.too_big += 1
            self._too_big(packet)
            return
        self.pipeline.send_packet(packet, self._loop.time())
        if self._fec_sending:
            self._arm_fec()

    def _send_raw(self, datagram: bytes, path_id: int | None) -> None:
        self.pipeline.send_datagram(datagram, self._loop.time(), path_id)

    def _arm_fec(self) -> None:
        fec = self.fec
        self._fec_timer.set(fec.next_timeout() if fec is not None else None)

    def _fec_expire(self) -> None:
        if self.fec is not None:
            self.fec.poll(self._loop.time())
            self._arm_fec()

    def _send_datagram(self, datagram: bytes, path_id: int | None = None) -> None:
        try:
            self.tunnel.send_datagram(datagram, path_id)
        except TunnelClosed:
            self.send_errors += 1
        except Exception:  # DatagramError (does not fit), H3UsageError (stream ended)
            self.send_errors += 1

    def _too_big(self, packet: bytes) -> None:
        router = self._router_address(packet[0] >> 4 if packet else 0)
        if router is None:
            return
        answer = packet_too_big(packet, self.mtu, router)
        if answer is not None:
            self._deliver(answer)

    # -- receiving -------------------------------------------------------------------

    async def run_datagrams(self) -> None:
        """Until the tunnel closes: datagrams into the pipeline, reorder timer armed.

        The datagrams queued so far are taken from the tunnel's queue; after that the
        tunnel hands each one over as the HTTP/3 layer parses it (``on_datagram``
        replaced on this Tunnel instance), without a queue and a task switch per
        packet.  The coroutine stays to learn when the tunnel closes."""
        tunnel = self.tunnel
        pipeline = self.pipeline
        loop = self._loop
        tunnel.on_datagram = self._on_datagram  # type: ignore[method-assign, assignment]
        while True:
            try:
                datagram = await tunnel.receive_datagram()
            except TunnelClosed:
                return
            pipeline.receive_datagram(datagram, loop.time())
            if pipeline.sequencing:
                self._arm()
            if self.fec is not None:
                self._arm_fec()

    def _on_datagram(self, datagram: bytes) -> None:
        pipeline = self.pipeline
        try:
            pipeline.receive_datagram(datagram, self._loop.time())
            # Armed already: at or before the reorder deadline, which only moves later as
            # held packets leave (the oldest waiting one goes first); when it fires,
            # _expire arms it again for what is left.  So only an idle timer is armed
            # here, not one re-armed per packet (a held packet per three, measured).
            if self._timer.at is None and pipeline.reorder.holding:
                self._arm()
            if self._fec_byte and datagram[:1] == self._fec_byte:
                self._arm_fec()  # only FEC datagrams change the decoders' deadlines
        except Exception:  # never let a packet break the connection's event processing
            pipeline.counters.malformed += 1
            logger.debug("datagram dropped: pipeline failed", exc_info=True)

    def _arm(self) -> None:
        self._timer.set(self.pipeline.reorder.next_deadline())

    def _expire(self) -> None:
        self.pipeline.reorder.expire(self._loop.time())
        self._arm()

    def adapt(self, path_stats: list[Any]) -> None:
        """Set the reorder bound from the paths that carried data lately (call it often).

        A path counts when it received data (more than keep-alives: 3 kB) over the last
        two seconds (eight calls at 0.25 s): a path carrying even a small share
        reorders the others' packets.  Only one such path: pass-through.
        Packets that arrived after their gap was given up (``late``) mean the bound was
        too short: it is stretched (up to 4x) and relaxes again while none are late.
        """
        config = self._reorder_config
        history = self._history
        seen: dict[int, int] = {}
        srtt: dict[int, float] = {}
        usable: list[int] = []  # where FEC may put sources and repairs (fec/stage.py)
        for st in path_stats:
            if st.state != "validated":
                continue
            if (st.status != "backup" and st.peer_status != "backup"
                    and not getattr(st, "suspect", False)):
                usable.append(st.path_id)
            seen[st.path_id] = st.bytes_received
            srtt[st.path_id] = st.srtt
        history.append(seen)
        if self.fec is not None:
            self.fec.set_paths(usable)
        if len(history) > 9:
            history.popleft()
        oldest = history[0]
        deltas = {pid: got - oldest.get(pid, got) for pid, got in seen.items()}
        active = [srtt[pid] for pid, d in deltas.items() if d > 3000]
        reorder = self.pipeline.reorder
        late = reorder.stats().late
        if late > self._late_seen:
            self._stretch = min(4.0, self._stretch * 1.5)
        else:
            self._stretch = max(1.0, self._stretch * 0.97)
        self._late_seen = late
        bound = 0.0
        if config.enabled and self.pipeline.sequencing:
            bound = adaptive_bound(active, factor=config.factor * self._stretch,
                                   margin=config.margin, max_wait=config.max_wait)
        # Lowering the bound to 0 flushes; a little hysteresis against flapping otherwise.
        if bound != reorder.bound and (bound == 0 or abs(bound - reorder.bound) > 0.001):
            reorder.set_bound(bound, self._loop.time())
            self._arm()

    def close(self) -> None:
        self._timer.cancel()
        self._fec_timer.cancel()

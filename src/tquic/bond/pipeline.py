"""The tunnel's datagram pipeline: IP packets in, HTTP Datagram payloads out, and back.

Outbound, an IP packet is framed (context 0, RFC 9484 §6; or our sequence
context when the peer accepted it), then passes each :class:`Stage` in order
(``outbound``), the last one handing it to the wire.  Inbound, a datagram from
the wire passes the stages in reverse order (``inbound``), then goes to the
handler of its Context ID: context 0 delivers the IP packet, the sequence
context goes through the reorder buffer.  A stage may emit datagrams of its own
context (FEC repair) and swallow them on the way in, and may re-inject a
datagram it recovered by calling its ``emit`` as if it had arrived.

This is the seam for extensions such as FEC (``tquic.bond.fec``): a stage and a
context ID negotiated with :mod:`tquic.bond.extensions`; a standard RFC 9484
peer negotiates none and only ever sees context 0.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tquic.bond.reorder import ReorderBuffer

Emit = Callable[[bytes], None]
_SEQ = struct.Struct("!I")
_SEQ_HEADER = struct.Struct("!BI")  # a one-byte Context ID (< 64, all of ours) and the number


class Stage(Protocol):
    """One processing step on HTTP Datagram payloads (Context ID included)."""

    def outbound(self, datagram: bytes, emit: Emit, now: float) -> None:
        """Pass ``datagram`` (possibly changed, possibly with more) towards the wire."""

    def inbound(self, datagram: bytes, emit: Emit, now: float) -> None:
        """Pass ``datagram`` from the wire towards the context handlers (or swallow it)."""


@dataclass(slots=True)
class PipelineCounters:
    """Datagrams through the pipeline (monotonic)."""

    packets_out: int = 0
    bytes_out: int = 0
    datagrams_out: int = 0
    packets_in: int = 0
    bytes_in: int = 0
    datagrams_in: int = 0
    unknown_context: int = 0  # dropped: a context ID nobody registered (RFC 9484 §6)
    malformed: int = 0  # dropped: no complete Context ID, or a short sequence header
    too_big: int = 0  # packets that did not fit a datagram (answered with Packet Too Big)


def _context_prefix(context_id: int) -> bytes:
    from tquic.wire.buffer import encode_varint

    return encode_varint(context_id)


class DatagramPipeline:
    """Frames, processes and dispatches one tunnel's datagrams.

    ``send(datagram)`` puts an HTTP Datagram payload on the wire; ``deliver(packet)``
    takes each IP packet received (in order when sequencing is on).
    """

    def __init__(self, send: Emit, deliver: Emit, *, seq_context: int | None = None,
                 reorder: ReorderBuffer | None = None,
                 send_on: Callable[[bytes, int], None] | None = None) -> None:
        self.counters = PipelineCounters()
        self._send = send
        self._send_on = send_on  # (datagram, QUIC path ID it should prefer)
        self._deliver = deliver
        self._stages: list[Stage] = []  # inbound: all of them
        self._out_stages: list[Stage] = []  # outbound: those that work on what we send
        self._now = 0.0  # the time of the datagram in the chains
        self._handlers: dict[int, Callable[[bytes, float], None]] = {0: self._on_ip}
        self._seq_context = seq_context
        self._seq_prefix = b"" if seq_context is None else _context_prefix(seq_context)
        # With a one-byte Context ID the header is packed in one go, and a received
        # datagram is cut once (not the Context ID, then the number).
        self._seq_byte = seq_context if seq_context is not None and seq_context < 0x40 else -1
        self._next_seq = 0
        self.reorder = reorder if reorder is not None else ReorderBuffer(deliver)
        if seq_context is not None:
            self._handlers[seq_context] = self._on_sequenced
        self._out_chain: Emit = self._wire
        self._in_chain: Emit = self._dispatch_now

    # -- configuration ----------------------------------------------------------------

    @property
    def sequencing(self) -> bool:
        return self._seq_context is not None

    def add_stage(self, stage: Stage, *, outbound: bool = True) -> None:
        """Append a stage: last added = closest to the wire.  ``outbound=False``: it
        sees only received datagrams (e.g. FEC decoding while we protect nothing).

        The chains are built here, once: per packet a stage costs its own call, not a
        closure and an index walk."""
        self._stages.append(stage)
        if outbound:
            self._out_stages.append(stage)
        emit: Emit = self._wire
        for step in reversed(self._out_stages):
            emit = self._out_step(step, emit)
        self._out_chain = emit
        deliver: Emit = self._dispatch_now
        for step in self._stages:
            deliver = self._in_step(step, deliver)
        self._in_chain = deliver

    def _out_step(self, stage: Stage, emit: Emit) -> Emit:
        def step(datagram: bytes) -> None:
            stage.outbound(datagram, emit, self._now)
        return step

    def _in_step(self, stage: Stage, emit: Emit) -> Emit:
        def step(datagram: bytes) -> None:
            stage.inbound(datagram, emit, self._now)
        return step

    def add_handler(self, context_id: int, handler: Callable[[bytes, float], None]) -> None:
        """Receive the payloads (Context ID removed) of ``context_id``."""
        if context_id in self._handlers:
            raise ValueError(f"context {context_id} already has a handler")
        self._handlers[context_id] = handler

    # -- outbound ---------------------------------------------------------------------

    def send_packet(self, packet: bytes, now: float) -> None:
        """Frame one IP packet and send it through the stages."""
        counters = self.counters
        counters.packets_out += 1
        counters.bytes_out += len(packet)
        if self._seq_byte >= 0:
            seq = self._next_seq
            self._next_seq = (seq + 1) & 0xFFFFFFFF
            datagram = _SEQ_HEADER.pack(self._seq_byte, seq) + packet
        elif self._seq_context is not None:
            seq = self._next_seq
            self._next_seq = (seq + 1) & 0xFFFFFFFF
            datagram = self._seq_prefix + _SEQ.pack(seq) + packet
        else:
            datagram = b"\x00" + packet
        self._now = now
        self._out_chain(datagram)

    def send_datagram(self, datagram: bytes, now: float, path_id: int | None = None) -> None:
        """A stage's own datagram (e.g. FEC repair), through the stages after it;
        ``path_id``: the QUIC path it should prefer (``send_on``), None for any."""
        if path_id is not None and self._send_on is not None:
            self.counters.datagrams_out += 1
            self._send_on(datagram, path_id)
            return
        self._wire(datagram)

    def _wire(self, datagram: bytes) -> None:
        self.counters.datagrams_out += 1
        self._send(datagram)

    # -- inbound ----------------------------------------------------------------------

    def receive_datagram(self, datagram: bytes, now: float) -> None:
        """One HTTP Datagram payload (Context ID first) from the wire."""
        self.counters.datagrams_in += 1
        self._now = now
        self._in_chain(datagram)

    def _dispatch_now(self, datagram: bytes) -> None:
        if datagram and datagram[0] == self._seq_byte and len(datagram) >= 6:
            # The sequenced context, the bulk of the traffic: one cut for both headers.
            counters = self.counters
            counters.packets_in += 1
            counters.bytes_in += len(datagram) - 5
            self.reorder.push(_SEQ_HEADER.unpack_from(datagram)[1], datagram[5:], self._now)
            return
        self._dispatch(datagram, self._now)

    def _dispatch(self, datagram: bytes, now: float) -> None:
        if not datagram:
            self.counters.malformed += 1
            return
        first = datagram[0]
        if first < 0x40:  # one-byte Context ID (all of ours)
            context_id, payload = first, datagram[1:]
        else:
            from tquic.h3.connect_ip import ConnectIpError, parse_ip_datagram

            try:
                context_id, payload = parse_ip_datagram(datagram)
            except ConnectIpError:
                self.counters.malformed += 1
                return
        handler = self._handlers.get(context_id)
        if handler is None:
            self.counters.unknown_context += 1
            return
        handler(payload, now)

    def _on_ip(self, packet: bytes, now: float) -> None:
        self.counters.packets_in += 1
        self.counters.bytes_in += len(packet)
        self._deliver(packet)

    def _on_sequenced(self, payload: bytes, now: float) -> None:
        if len(payload) < 5:
            self.counters.malformed += 1
            return
        self.counters.packets_in += 1
        self.counters.bytes_in += len(payload) - 4
        self.reorder.push(_SEQ.unpack_from(payload)[0], payload[4:], now)

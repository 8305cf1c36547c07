"""FEC as a stage of the bond tunnel's datagram pipeline (tquic.bond.pipeline.Stage).

The pipeline hands each outgoing HTTP Datagram payload (Context ID first: 0 for
a plain IP packet, the ``seq`` context for a sequenced one, RFC 9484 §6) to
``outbound``.  The stage reads the IP packet behind that prefix to find its
traffic class; a protected datagram travels *whole* (its Context ID and
sequence number included) as an FEC source on the negotiated FEC context, so
the receiving stage hands back exactly the datagram the sender's pipeline made,
and a rebuilt one goes to the reorder buffer by its own sequence number.
Everything else passes untouched: a peer that did not accept the ``fec``
extension never gets this stage, hence never an FEC context datagram.

Paths (issue 17: repairs on another path than their sources): ``set_paths``
gives the stage the tunnel's usable QUIC paths (validated, not backup, not
suspect).  With two or more, every FEC datagram is sent with a path preference
(``QuicConnection.send_datagram(data, path_id)``, which the engine drops for a
path that cannot send): the sources of a ``fec`` or ``redundant`` class keep to
one path, the least lossy by the receiver's feedback (session.py
``source_path``), and their repairs and copies take another (policy.py), so a
loss on one link cannot take a source and its repair together; a
``fec+aggregate`` class's sources go where the connection's scheduler puts
them.  With one path, no preference.

A datagram whose repair would not fit the tunnel's largest datagram
(``max_datagram``: a repair adds ``REPAIR_GROWTH`` bytes to the datagram it
covers) is sent plain and counted in ``too_big``.  Repairs due at a block's
deadline and feedback for the sender come from ``poll(now)``, called when
``next_timeout()`` is due, through ``send_raw`` (straight to the wire).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from tquic.bond.fec import wire
from tquic.bond.fec.classify import Action
from tquic.bond.fec.codes import PREFIX
from tquic.bond.fec.session import FecSession
from tquic.bond.fec.stats import FecStats

Emit = Callable[[bytes], None]
SendRaw = Callable[[bytes, int | None], None]
"""Sends one datagram straight to the wire, preferring a QUIC path (None: any)."""
SEQ_HEADER = 4
HEADERS = 256  # bytes of an IP packet the classifier may read (IPv6 extension headers)
REPAIR_GROWTH = 1 + wire.REPAIR_HEADER + PREFIX
"""Bytes an FEC repair datagram adds to the largest datagram it covers: its 1-byte
Context ID, the repair header and the symbol's length prefix."""


class FecStage:
    """One tunnel's FEC stage (see the module docstring)."""

    __slots__ = ("_fec_prefix", "_max_inner", "_paths", "_send_raw", "_seq_context", "session",
                 "too_big")

    def __init__(self, session: FecSession, fec_context: int, seq_context: int | None,
                 send_raw: SendRaw, max_datagram: int) -> None:
        if not 0 < fec_context < 64:
            raise ValueError(f"fec_context must be a 1-byte varint 1..63, got {fec_context}")
        self.session = session
        self._fec_prefix = bytes([fec_context])
        self._seq_context = seq_context
        self._send_raw = send_raw
        self._max_inner = max_datagram - REPAIR_GROWTH
        self.too_big = 0
        self._paths: tuple[int, ...] = ()

    @property
    def paths(self) -> tuple[int, ...]:
        return self._paths

    def set_paths(self, path_ids: Iterable[int]) -> None:
        """The QUIC paths repairs may prefer (see the module docstring)."""
        paths = tuple(sorted(set(path_ids)))
        if paths != self._paths:
            self._paths = paths
            self.session.set_paths(paths if len(paths) > 1 else ())

    def set_max_datagram(self, max_datagram: int) -> None:
        """The tunnel's largest datagram changed (it follows the paths' MTU)."""
        self._max_inner = max_datagram - REPAIR_GROWTH

    def _packet(self, datagram: bytes) -> bytes | None:
        """The headers of the IP packet inside a pipeline datagram (the first
        ``HEADERS`` bytes: all a class needs), or None for another context."""
        ctx = datagram[0] if datagram else 0xFF
        if ctx == 0:
            return datagram[1:1 + HEADERS]
        if ctx == self._seq_context:
            return datagram[1 + SEQ_HEADER:1 + SEQ_HEADER + HEADERS]
        return None

    def outbound(self, datagram: bytes, emit: Emit, now: float) -> None:
        packet = self._packet(datagram)
        if packet is None:
            emit(datagram)
            return
        session = self.session
        name, action = session.classify(packet)
        if action is Action.OFF:  # the common case for bulk traffic: one cache lookup
            emit(datagram)
            return
        if len(datagram) > self._max_inner:
            self.too_big += 1
            emit(datagram)
            return
        prefix = self._fec_prefix
        for out in session.send_classified(datagram, now, name, action, None, packet):
            if out.kind == "plain":
                emit(out.payload)
            elif out.path is None:
                emit(prefix + out.payload)
            else:
                self._send_raw(prefix + out.payload, out.path)

    def inbound(self, datagram: bytes, emit: Emit, now: float) -> None:
        if datagram[:1] != self._fec_prefix:
            emit(datagram)
            return
        for inner in self.session.receive(datagram[1:], now):
            # a rebuilt or protected datagram of our own contexts only: an FEC payload
            # cannot smuggle another FEC datagram (or any other context) through
            if inner[:1] != self._fec_prefix and self._packet(inner) is not None:
                emit(inner)
        for out in self.session.take_feedback():
            self._send_raw(self._fec_prefix + out.payload, None)

    def next_timeout(self) -> float | None:
        return self.session.next_timeout()

    def poll(self, now: float) -> None:
        prefix = self._fec_prefix
        for out in self.session.poll(now):
            self._send_raw(prefix + out.payload, out.path)

    def stats(self) -> FecStats:
        return dataclasses.replace(self.session.stats(), too_big=self.too_big)

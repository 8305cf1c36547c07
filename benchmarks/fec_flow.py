"""The FEC benchmark's flow driver: one flow through FecSession over n links, any clock.

Shared by the simulated run (tquic.sim's EventLoop and Pipes) and the real-time
run (QUIC DATAGRAMs through ``tquic netem`` relays): the driver only needs a
clock with ``now`` / ``call_at`` and two callbacks, ``up(i, data)``
(sender -> receiver, preferring link i; None: any) and ``down(i, data)`` (feedback back).  Payloads start
with a marker byte standing in for the tunnel's Context ID: 0 plain, 1 FEC.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tquic.bond.fec import Action, ClassRule, FecConfig, FecSession, FecStats
from tquic.bond.fec.wire import SOURCE

PLAIN, FEC = b"\x00", b"\x01"
RTP_PORT = 20000  # UDP 16384-32767: the built-in "rtp" class, FEC (voice: "voice-ef" first)


class Clock(Protocol):
    @property
    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[Any], None], arg: Any = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Flow:
    """``schedule(duration)`` -> (send time, IP packet size, RTP marker) triples.

    Packets are RTP over UDP (RFC 3550): video sets the marker bit on a frame's last
    packet (RFC 6184 §5.1), voice on its first (RFC 3551 §4.1); ``markers=False``
    leaves it clear everywhere (the FEC then finds a frame's end by its pause)."""

    name: str
    kind: str  # "voip" | "video"
    dscp: int  # EF (46) for voice, AF41 (34) for video (RFC 4594; RFC 8837 for WebRTC)
    markers: bool = True

    def schedule(self, duration: float) -> list[tuple[float, int, bool]]:
        if self.kind == "voip":  # 50 packets/s of 200 bytes
            return [(i * 0.02, 200, self.markers and i == 0)
                    for i in range(int(duration / 0.02))]
        # 5 Mbit/s at 30 frames/s: 20833 bytes a frame, in 1100-byte packets 0.3 ms apart
        # (1100 + FEC framing fits one QUIC DATAGRAM frame of a 1200-byte packet)
        out: list[tuple[float, int, bool]] = []
        frame = 5e6 / 8 / 30
        for f in range(int(duration * 30)):
            left, t = frame, f / 30
            while left > 0:
                size = int(min(1100, max(left, 60)))
                left -= size
                out.append((t, size, self.markers and left <= 0))
                t += 0.0003
        return out


FLOWS = (Flow("VoIP 50 pps x 200 B", "voip", 46), Flow("video 5 Mbit/s", "video", 34))
MODES = ("off", "xor", "rs", "adaptive", "redundant")
NOHINT = "adaptive-nohint"
"""Adaptive FEC whose datagrams carry no path preference (the bond before issue 17's
per-datagram path choice): the scheduler (simulated: round robin) places repairs too."""


def config_for(mode: str) -> FecConfig:
    """A mode of the table, or ``rs:K:M:DELAY_MS`` / ``adaptive:K:DELAY_MS[:MAX_OVERHEAD]``
    (the sweep; with a ceiling the built-in classes are off, so that voice marked EF
    gets that ceiling rather than its own 100 %)."""
    if mode.startswith("rs:"):
        _, k, m, delay = mode.split(":")
        return FecConfig(mode="rs", block=int(k), repairs=int(m), max_delay=float(delay) / 1000)
    if mode.startswith("adaptive:"):  # adaptive:K:DELAY_MS[:MAX_OVERHEAD]
        _, k, delay, *ceiling = mode.split(":")
        return FecConfig(mode="adaptive", block=int(k), max_delay=float(delay) / 1000,
                         hold=max(0.2, 3 * float(delay) / 1000),
                         max_overhead=float(ceiling[0]) if ceiling else 0.25,
                         **({"classes": (ClassRule("all", Action.FEC),),
                             } if ceiling else {}))
    if mode == "off":
        return FecConfig(enabled=False)
    if mode == "xor":
        return FecConfig(mode="xor", block=8)
    if mode == "rs":
        return FecConfig(mode="rs", block=16, repairs=4)
    if mode == NOHINT:
        return FecConfig(mode="adaptive")
    if mode == "redundant":
        return FecConfig(classes=(ClassRule("all", Action.REDUNDANT),))
    return FecConfig(mode="adaptive")


def ip_packet(seq: int, size: int, dscp: int = 0, marker: bool = False) -> bytes:
    # RTP (RFC 3550 §5.1): version 2, marker, dynamic payload type 96; then our number
    rtp = struct.pack("!BBHII", 0x80, 0x80 * marker | 96, seq & 0xFFFF, seq * 3000, 1)
    payload = rtp + struct.pack("!I", seq) + bytes(max(0, size - 44))
    udp = struct.pack("!HHHH", 40000, RTP_PORT, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, dscp << 2, 20 + len(udp), 0, 0, 64, 17, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp


def seq_of(packet: bytes) -> int:
    return int(struct.unpack_from("!I", packet, 40)[0])


@dataclass(frozen=True, slots=True)
class Result:
    sent: int
    delivered: int
    source_bytes: int
    extra_bytes: int  # FEC headers, repairs, copies and feedback on the wire
    added: list[float]  # seconds beyond the base one-way delay, per delivered packet
    recovered: int
    tx: FecStats | None = None  # the sender's and the receiver's counters (whole run)
    rx: FecStats | None = None
    # The FEC's own share, per delivered packet, from the receiver's clock: 0 for a
    # packet that arrived itself; for a rebuilt one, when it was rebuilt minus when it
    # would have arrived (its send time plus the one-way delay of the next packet
    # that did arrive: the same links, the same stack, the same moment).
    fec_added: list[float] = field(default_factory=list)
    # the added latency of the packets that arrived themselves: the stack's and the
    # machine's share, the noise floor of a real-time run
    direct_added: list[float] = field(default_factory=list)
    # how late the sender's FEC timer fired (seconds after it was due), for the polls
    # that sent repairs: the event loop's share of a rebuilt packet's wait
    timer_late: list[float] = field(default_factory=list)
    # real time: datagrams in the sender's QUIC queue as each was handed over (> 0: its
    # congestion window was full: the controller's share of the delay)
    queued: list[int] = field(default_factory=list)

    @property
    def residual(self) -> float:
        return 1.0 - self.delivered / self.sent if self.sent else 0.0

    @property
    def overhead(self) -> float:
        return self.extra_bytes / self.source_bytes if self.source_bytes else 0.0


class FlowDriver:
    """Sends one flow through a FecSession pair over ``links``, as the bond's FEC stage does.

    ``up(link, data)``: ``link`` is the path the datagram prefers, None for none: the
    transport's scheduler (simulated: round robin) chooses.  Sources never prefer a
    path; with several links the sender's FEC knows them (``set_paths``) and each
    repair prefers the one its policy picks — except in the ``adaptive-nohint`` mode
    (no preference at all, the bond before issue 17)."""

    def __init__(self, clock: Clock, mode: str, flow: Flow, nlinks: int,
                 up: Callable[[int | None, bytes], None], down: Callable[[int, bytes], None],
                 base_delay: float) -> None:
        self.clock = clock
        cfg = config_for(mode)
        self.hints = mode != NOHINT and nlinks > 1
        self.tx, self.rx = FecSession(cfg), FecSession(cfg)
        self.flow = flow
        self.nlinks = nlinks
        self._up, self._down = up, down
        self.base_delay = base_delay
        self.sent_at: dict[int, float] = {}
        self.delivered_at: dict[int, float] = {}
        self.direct: set[int] = set()  # delivered by their own datagram (not rebuilt)
        self.timer_late: list[float] = []
        self.source_bytes = 0
        self.wire_bytes = 0
        if self.hints:
            self.tx.set_paths(tuple(range(nlinks)))
        self._tx_timer: float | None = None
        self._rx_timer: float | None = None

    def start(self, duration: float) -> float:
        """Schedule the flow; returns when its last packet is sent."""
        last = 0.0
        now = self.clock.now
        for seq, (t, size, marker) in enumerate(self.flow.schedule(duration)):
            self.clock.call_at(now + t, self._send, (seq, size, marker))
            last = now + t
        return last

    def _emit_up(self, data: bytes, kind: str, path: int | None) -> None:
        self.wire_bytes += len(data)
        target = path if self.hints and path is not None and 0 <= path < self.nlinks else None
        self._up(target, (PLAIN if kind == "plain" else FEC) + data)

    def _send(self, arg: tuple[int, int, bool]) -> None:
        seq, size, marker = arg
        now = self.clock.now
        packet = ip_packet(seq, size, self.flow.dscp, marker)
        self.sent_at[seq] = now
        self.source_bytes += len(packet)
        for o in self.tx.send(packet, now):
            self._emit_up(o.payload, o.kind, o.path)
        self._arm_tx()

    def _arm_tx(self) -> None:
        # One pending timer at a time, moved only earlier (as the tunnel's DeadlineTimer):
        # a block's deadline moves later with every source, and a timer per source is
        # hundreds of event-loop handles a second in real time
        t = self.tx.next_timeout()
        if t is not None and (self._tx_timer is None or t < self._tx_timer):
            self._tx_timer = t
            self.clock.call_at(max(t, self.clock.now), self._tx_poll, t)

    def _tx_poll(self, armed: float) -> None:
        if armed != self._tx_timer:
            return  # superseded by an earlier timer
        self._tx_timer = None
        now = self.clock.now
        due = self.tx.next_timeout()
        if due is not None and due <= now:
            out = self.tx.poll(now)
            if any(o.kind == "repair" for o in out):
                self.timer_late.append(now - due)
            for o in out:
                self._emit_up(o.payload, o.kind, o.path)
        self._arm_tx()

    def on_up(self, data: bytes) -> None:
        """A datagram arrived at the receiver."""
        now = self.clock.now
        if data[:1] == PLAIN:
            packets = [data[1:]]
            self.direct.add(seq_of(packets[0]))
        else:
            packets = self.rx.receive(data[1:], now)
            if packets and len(data) > 1 and data[1] >> 6 == SOURCE:
                self.direct.add(seq_of(packets[0]))  # a source comes first, rebuilt ones after
        for p in packets:
            seq = seq_of(p)
            if seq not in self.delivered_at:
                self.delivered_at[seq] = now
        self._arm_rx()

    def _arm_rx(self) -> None:
        t = self.rx.next_timeout()
        if t is not None and (self._rx_timer is None or t < self._rx_timer):
            self._rx_timer = t
            self.clock.call_at(max(t, self.clock.now), self._rx_poll, t)

    def _rx_poll(self, armed: float) -> None:
        if armed != self._rx_timer:
            return
        self._rx_timer = None
        for o in self.rx.poll(self.clock.now):
            self.wire_bytes += len(o.payload)
            self._down(0, FEC + o.payload)
        self._arm_rx()

    def on_down(self, data: bytes) -> None:
        """Feedback arrived back at the sender."""
        self.tx.receive(data[1:], self.clock.now)

    def result(self, after: float = 0.0) -> Result:
        """The figures of the packets sent from ``after`` on (a warm-up left out)."""
        counted = [s for s, t in self.sent_at.items() if t >= after]
        got = [s for s in counted if s in self.delivered_at]
        added = [self.delivered_at[s] - self.sent_at[s] - self.base_delay for s in got]
        share = len(counted) / len(self.sent_at) if self.sent_at else 0.0
        # bytes are counted for the whole run; scale to the share measured
        return Result(len(counted), len(got), int(self.source_bytes * share),
                      int((self.wire_bytes - self.source_bytes) * share), added,
                      self.rx.stats().recovered, self.tx.stats(), self.rx.stats(),
                      self._fec_added(got), [a for s, a in zip(got, added, strict=True)
                                             if s in self.direct], list(self.timer_late))

    def _fec_added(self, got: list[int]) -> list[float]:
        direct = sorted(self.direct)
        out = []
        for s in got:
            if s in self.direct:
                out.append(0.0)
                continue
            i = bisect.bisect(direct, s)
            # the next packet that arrived itself (the previous one at the flow's end)
            nb = direct[i] if i < len(direct) else direct[-1] if direct else s
            owd = self.delivered_at[nb] - self.sent_at[nb] if nb in self.delivered_at else 0.0
            out.append(self.delivered_at[s] - (self.sent_at[s] + owd))
        return out

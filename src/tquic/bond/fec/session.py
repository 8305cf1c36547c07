"""One tunnel endpoint's FEC: classify, encode, decode, feedback, counters (sans-I/O).

The tunnel calls four things, each with ``now``:

- ``send(payload, now, path, packet)`` for every packet it is about to send:
  the class of ``packet`` (the IP packet; ``payload`` if not given) picks the
  action; the result is what to send instead — ``kind == "plain"`` on the
  tunnel's ordinary context, everything else on the negotiated FEC context.
- ``receive(data, now)`` for every datagram on the FEC context: the packets to
  pass on (sources at once, rebuilt ones as soon as they can be).
- ``poll(now)`` when ``next_timeout()`` is due: repairs of blocks whose
  deadline passed and feedback for blocks the receiver gave up on.
- ``stats()``: the counters, for the control plane and metrics.

Each action has its own stream (wire.py) so their blocks never mix: stream 0
carries ``fec`` and ``fec+aggregate`` classes, stream 1 ``redundant``, and each
class with its own ``max_overhead`` (adaptive mode) a stream of its own from 2
on; the adaptive policies share one table of per-path loss statistics.
"""

from __future__ import annotations

from tquic.bond.fec import wire
from tquic.bond.fec.classify import Action, rtp_marker
from tquic.bond.fec.codes import Code
from tquic.bond.fec.config import FecConfig
from tquic.bond.fec.decoder import StreamDecoder
from tquic.bond.fec.encoder import FecEncoder, Outgoing
from tquic.bond.fec.loss import PathId, PathLoss
from tquic.bond.fec.policy import AdaptiveRepair, FixedRepair, RepairPolicy
from tquic.bond.fec.stats import FecStats

FEC_STREAM = 0
REDUNDANT_STREAM = 1
SWITCH_MARGIN = 0.005
"""The sources' path changes when another loses this much less (absolute share)."""
SWITCH_SAMPLES = 50
"""... measured over at least this many symbols."""
PRIOR = 0.01
"""The loss a path is taken to have before any feedback (as the adaptive policy's prior)."""
_COUNTERS = ("received_sources", "received_repairs", "recovered", "unrecoverable",
             "repairs_dropped", "malformed", "duplicates", "late", "feedback_sent",
             "feedback_received")


def policy_for(config: FecConfig, max_overhead: float | None = None,
               loss: dict[PathId, PathLoss] | None = None) -> RepairPolicy:
    """The repair policy ``config.mode`` names (adaptive: with ``max_overhead`` if given,
    sharing the ``loss`` table)."""
    if config.mode == "xor":
        return FixedRepair(Code.XOR, config.block, 1, loss=loss)
    if config.mode == "rs":
        return FixedRepair(Code.RS, config.block, config.repairs, loss=loss)
    ceiling = config.max_overhead if max_overhead is None else max_overhead
    return AdaptiveRepair(config.block, ceiling, config.target_loss, config.off_below,
                          loss=loss)


class FecSession:
    """FEC for both directions of one tunnel (see the module docstring)."""

    __slots__ = ("_class_streams", "_classifier", "_config", "_counters", "_decoders",
                 "_encoders", "_feedback", "_loss", "_paths", "_plain", "_plain_bytes",
                 "_source")

    def __init__(self, config: FecConfig | None = None, policy: RepairPolicy | None = None
                 ) -> None:
        config = config if config is not None else FecConfig()
        self._config = config
        self._classifier = config.classifier()
        loss: dict[PathId, PathLoss] = {}
        self._encoders = {
            FEC_STREAM: FecEncoder(FEC_STREAM, policy or policy_for(config, loss=loss),
                                   config.max_delay, config.repair_spacing),
            REDUNDANT_STREAM: FecEncoder(REDUNDANT_STREAM, FixedRepair(Code.XOR, 1, 1, loss),
                                         config.max_delay, config.repair_spacing),
        }
        # class name -> its own stream, for FEC classes with their own ceiling
        self._class_streams: dict[str, int] = {}
        if policy is None and config.mode == "adaptive":
            for rule in config.classes:
                if (rule.max_overhead is not None and rule.action in (Action.FEC, Action.FEC_AGGREGATE)
                        and rule.name not in self._class_streams
                        and len(self._encoders) < wire.MAX_STREAMS):
                    stream = len(self._encoders)
                    self._class_streams[rule.name] = stream
                    self._encoders[stream] = FecEncoder(
                        stream, policy_for(config, rule.max_overhead, loss), config.max_delay,
                        config.repair_spacing)
        self._decoders: dict[int, StreamDecoder] = {}
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._feedback: list[bytes] = []
        self._plain = 0
        self._plain_bytes = 0
        self._paths: tuple[int, ...] = ()
        self._source: int | None = None
        self._loss = loss  # every policy's feedback, per path (loss.py)

    @property
    def config(self) -> FecConfig:
        return self._config

    def encoder(self, stream: int = FEC_STREAM) -> FecEncoder:
        return self._encoders[stream]

    def classify(self, packet: bytes) -> tuple[str, Action]:
        """The class of ``packet`` ("", off while sending is disabled)."""
        if not self._config.enabled:
            return "", Action.OFF
        return self._classifier.classify(packet)

    def set_paths(self, paths: tuple[int, ...]) -> None:
        """The tunnel's usable paths (empty: one path, nothing to choose): the path of
        the sources of ``fec`` and ``redundant`` classes (``source_path``) and repair
        candidates for every policy (policy.py)."""
        self._paths = tuple(paths)
        for encoder in self._encoders.values():
            encoder.policy.set_paths(paths)

    def source_path(self) -> int | None:
        """The path the sources of a non-aggregate class prefer: the least lossy by the
        receiver's feedback, sticky (another path must lose ``SWITCH_MARGIN`` less, over
        ``SWITCH_SAMPLES`` symbols at least); the lowest path ID before any feedback.
        None with fewer than two paths."""
        paths = self._paths
        if len(paths) < 2:
            return None
        current = self._source if self._source in paths else paths[0]
        loss = self._loss

        def mean(p: int) -> tuple[float, int]:
            pl = loss.get(p)
            if pl is None:
                return PRIOR, 0
            est = pl.estimate()
            return est.mean, est.samples

        now = mean(current)[0]
        for p in paths:
            m, samples = mean(p)
            if samples >= SWITCH_SAMPLES and m < now - SWITCH_MARGIN:
                current, now = p, m
        self._source = current
        return current

    # -- sending ------------------------------------------------------------------------

    def send(self, payload: bytes, now: float, path: PathId = None,
             packet: bytes | None = None) -> list[Outgoing]:
        """What to send for ``payload`` (see the module docstring)."""
        action, name = Action.OFF, ""
        packet = payload if packet is None else packet
        if self._config.enabled:
            name, action = self._classifier.classify(packet)
        return self.send_classified(payload, now, name, action, path, packet)

    def send_classified(self, payload: bytes, now: float, name: str, action: Action,
                        path: PathId = None, packet: bytes | None = None) -> list[Outgoing]:
        """``send`` for a packet already classified (``classify``) as ``name``/``action``;
        ``packet``: the IP packet (its first bytes at least), read for an RTP marker
        (the end of a video frame closes the block: encoder.py)."""
        if action is Action.OFF:
            self._plain += 1
            self._plain_bytes += len(payload)
            return [Outgoing(payload, "plain", path)]
        if path is None and not action.aggregate:
            path = self.source_path()  # a class kept on one path; its repairs on another
        if action is Action.REDUNDANT:
            return self._encoders[REDUNDANT_STREAM].protect(payload, now, path)
        stream = self._class_streams.get(name, FEC_STREAM)
        end = packet is not None and rtp_marker(packet)
        return self._encoders[stream].protect(payload, now, path, end)

    # -- receiving ----------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Packets to pass on for one datagram of the FEC context; never raises."""
        try:
            frame = wire.parse(data)
        except wire.FecWireError:
            kind = data[0] >> 6 if data else -1
            self._counters["repairs_dropped" if kind == wire.REPAIR else "malformed"] += 1
            return []
        if isinstance(frame, wire.FeedbackFrame):
            self._counters["feedback_received"] += 1
            encoder = self._encoders.get(frame.stream)
            if encoder is not None:
                encoder.on_feedback(frame)
            return []
        decoder = self._decoders.get(frame.stream)
        if decoder is None:
            decoder = self._decoders[frame.stream] = StreamDecoder(
                frame.stream, self._counters, self._feedback, self._config.hold)
        if isinstance(frame, wire.SourceFrame):
            return decoder.on_source(frame, now)
        return decoder.on_repair(frame, now)

    # -- timers -------------------------------------------------------------------------

    def next_timeout(self) -> float | None:
        times = [t for e in self._encoders.values() if (t := e.next_timeout()) is not None]
        times += [t for d in self._decoders.values() if (t := d.next_timeout()) is not None]
        return min(times) if times else None

    def poll(self, now: float) -> list[Outgoing]:
        """Repairs whose block deadline passed, and feedback to send back."""
        out: list[Outgoing] = []
        for e in self._encoders.values():
            out.extend(e.poll(now))
        for d in self._decoders.values():
            d.poll(now)
        out.extend(Outgoing(fb, "feedback") for fb in self._feedback)
        self._feedback.clear()
        return out

    def take_feedback(self) -> list[Outgoing]:
        """Feedback produced by ``receive`` (blocks evicted early), to send back."""
        out = [Outgoing(fb, "feedback") for fb in self._feedback]
        self._feedback.clear()
        return out

    # -- counters -----------------------------------------------------------------------

    def stats(self) -> FecStats:
        sent = FecStats()
        for e in self._encoders.values():
            sent = sent + e.stats()
        red = self._encoders[REDUNDANT_STREAM].stats()
        c = self._counters
        return FecStats(
            sources=sent.sources, source_bytes=sent.source_bytes,
            repairs_sent=sent.repairs_sent, repair_bytes=sent.repair_bytes,
            header_bytes=sent.header_bytes, duplicates_sent=red.repairs_sent,
            **{key: c[key] for key in _COUNTERS},
        )

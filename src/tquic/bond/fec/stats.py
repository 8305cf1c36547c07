"""FEC counters as frozen values for the control plane and the metrics exporter."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class FecStats:
    """What one side's FEC did since it started.

    Sender side: ``sources`` / ``source_bytes`` protected packets, ``repairs_sent`` /
    ``repair_bytes`` repair datagrams; ``duplicates_sent`` copies of the
    ``redundant`` action; ``header_bytes`` the FEC framing on sources; ``too_big``
    packets of a protected class sent unprotected because their repair would not
    fit the tunnel's largest datagram (stage.py).
    Receiver side: ``recovered`` sources rebuilt from repairs, ``unrecoverable``
    sources known lost that could not be rebuilt, ``repairs_dropped`` repair
    datagrams that were corrupt, truncated or inconsistent with their block,
    ``malformed`` other FEC payloads that did not parse, ``duplicates`` symbols
    received twice (the ``redundant`` copies), ``late`` symbols of a block
    already forgotten.
    """

    sources: int = 0
    source_bytes: int = 0
    repairs_sent: int = 0
    repair_bytes: int = 0
    header_bytes: int = 0
    duplicates_sent: int = 0
    too_big: int = 0
    received_sources: int = 0
    received_repairs: int = 0
    recovered: int = 0
    unrecoverable: int = 0
    repairs_dropped: int = 0
    malformed: int = 0
    duplicates: int = 0
    late: int = 0
    feedback_sent: int = 0
    feedback_received: int = 0

    @property
    def overhead_pct(self) -> float:
        """Repair and framing bytes as a percentage of the protected bytes."""
        if not self.source_bytes:
            return 0.0
        return 100.0 * (self.repair_bytes + self.header_bytes) / self.source_bytes

    def __add__(self, other: FecStats) -> FecStats:
        a, b = asdict(self), asdict(other)
        return FecStats(**{key: a[key] + b[key] for key in a})

    def as_dict(self) -> dict[str, float]:
        """Counters plus ``overhead_pct``, for JSON and Prometheus."""
        out: dict[str, float] = dict(asdict(self))
        out["overhead_pct"] = round(self.overhead_pct, 3)
        return out

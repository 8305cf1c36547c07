"""Per-path loss statistics with loss runs, and the residual loss they predict.

The sender learns, from the receiver's feedback (wire.py), which symbols of each
block arrived; it knows the path each one took.  ``PathLoss`` keeps, per path,
an exponentially weighted mean loss rate AND the mean length of a loss run
(consecutive losses): 5 % of losses in runs of 1 and 5 % in runs of 4 need very
different protection.  The two figures define a Gilbert-Elliott chain with a
lossless good state and a lossy bad state (tquic.sim.profile.GilbertElliott):
r = 1 / mean run, p = r * mean / (1 - mean).  ``residual`` runs that chain over
the block's symbols to predict the share of sources a (k, m) block loses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

PathId = int | None


@dataclass(frozen=True, slots=True)
class LossEstimate:
    """One path's loss: ``mean`` rate, ``run`` mean loss-run length, ``samples`` seen."""

    mean: float
    run: float
    samples: int


class PathLoss:
    """Loss statistics of one path, fed one outcome per symbol in sending order."""

    __slots__ = ("_current_run", "_mean", "_prior", "_run", "_samples", "_window")

    def __init__(self, prior: float = 0.01, window: int = 500) -> None:
        self._mean = prior
        self._prior = prior
        self._run = 1.0
        self._window = window
        self._samples = 0
        self._current_run = 0

    def observe(self, lost: bool) -> None:
        self._samples += 1
        # The first samples count as a plain average (fast start from the prior),
        # then the weight settles at 1/window.
        weight = 1.0 / min(self._samples + 20, self._window)
        self._mean += ((1.0 if lost else 0.0) - self._mean) * weight
        if lost:
            self._current_run += 1
        elif self._current_run:
            self._run += (self._current_run - self._run) / 16.0
            self._current_run = 0

    def estimate(self) -> LossEstimate:
        return LossEstimate(self._mean, max(1.0, self._run), self._samples)


def _quantise(x: float) -> float:
    # Two significant digits: estimates that barely moved share a cache entry.
    return float(f"{x:.2g}")


@lru_cache(maxsize=4096)
def _loss_counts(mean: float, run: float, n: int) -> tuple[float, ...]:
    """P(j of n consecutive symbols lost), j = 0..n, for the Gilbert-Elliott chain of
    (mean, run) started in its stationary state."""
    if n == 0 or mean <= 0.0:
        return (1.0,) + (0.0,) * n
    mean = min(mean, 0.999)
    r = min(1.0, 1.0 / run)
    p = min(1.0, r * mean / (1.0 - mean))
    # good[j] / bad[j]: probability of j losses so far and the chain now good / bad.
    bad_start = p / (p + r)
    good = [1.0 - bad_start] + [0.0] * n
    bad = [bad_start] + [0.0] * n
    for step in range(n):
        ng = [0.0] * (n + 1)
        nb = [0.0] * (n + 1)
        for j in range(step + 1):
            g, b = good[j], bad[j]
            if g:  # good: delivered, then may turn bad
                ng[j] += g * (1.0 - p)
                nb[j] += g * p
            if b:  # bad: lost, then may recover
                ng[j + 1] += b * r
                nb[j + 1] += b * (1.0 - r)
        good, bad = ng, nb
    return tuple(g + b for g, b in zip(good, bad, strict=True))


def loss_distribution(groups: Sequence[tuple[LossEstimate, int]]) -> list[float]:
    """P(j symbols of the block lost), given (path estimate, symbols sent on it) groups;
    paths are independent of each other, bursty within."""
    dist = [1.0]
    for est, n in groups:
        part = _loss_counts(_quantise(est.mean), _quantise(est.run), n)
        out = [0.0] * (len(dist) + len(part) - 1)
        for i, a in enumerate(dist):
            if a:
                for j, b in enumerate(part):
                    out[i + j] += a * b
        dist = out
    return dist


def residual(sources: Sequence[tuple[LossEstimate, int]],
             repairs: Sequence[tuple[LossEstimate, int]], k: int, m: int) -> float:
    """Predicted share of the k sources lost for good: a block that loses s sources and
    r repairs with s + r > m loses those s.  Sources and repairs are taken as
    independent groups (repairs usually go on another path, see adaptive.py)."""
    ds = loss_distribution(sources)
    dr = loss_distribution(repairs) if m else [1.0]
    total = 0.0
    for s, ps in enumerate(ds):
        if s == 0 or not ps:
            continue
        # P(r > m - s) for the repairs
        beyond = sum(dr[max(0, m - s + 1):])
        total += ps * beyond * s
    return total / k

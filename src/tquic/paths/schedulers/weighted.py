"""weighted: smooth weighted round robin over paths, with a weight per path ID.

The nginx "smooth weighted round-robin": every choice adds each eligible path's
weight to its running score, picks the highest score and subtracts the total
weight from it.  Over any window of sum(weights) choices each path gets exactly
its share, and the choices are interleaved (3:1 gives a a b a, not a a a b).

Eligible = validated (when any is) with window room.  A weight of 0 makes a
path a backup: used only when no positive-weight path has room.  Paths not in
``weights`` get ``default_weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tquic.paths.path import Path
from tquic.paths.schedulers.extended import SchedulerBase, candidates, fastest, ready, wait_for


class WeightedScheduler(SchedulerBase):
    __slots__ = ("_scores", "default_weight", "weights")
    name = "weighted"
    pacing_aware = True

    def __init__(self, weights: Mapping[int, float] | None = None,
                 default_weight: float = 1.0) -> None:
        self.weights: dict[int, float] = {}
        _check_weight(default_weight, "default_weight")
        self.default_weight = default_weight
        for path_id, w in (weights or {}).items():
            self.set_weight(path_id, w)
        self._scores: dict[int, float] = {}

    def set_weight(self, path_id: int, weight: float) -> None:
        """Change one path's weight (takes effect at the next choice)."""
        if path_id < 0:
            raise ValueError(f"weights: path id must be >= 0, got {path_id}")
        _check_weight(weight, f"weights[{path_id}]")
        self.weights[path_id] = weight

    def weight_of(self, path_id: int) -> float:
        return self.weights.get(path_id, self.default_weight)

    def select(self, paths: Sequence[Path], now: float) -> Path | None:
        if len(paths) <= 1:
            return paths[0] if paths else None
        pool = candidates(paths)
        able = [p for p in pool if ready(p, now)]
        if not able:
            return wait_for(pool, now)
        weighted = [(p, self.weight_of(p.path_id)) for p in able]
        positive = [(p, w) for p, w in weighted if w > 0]
        if not positive:
            # Only backups have room: plain round robin among them, by equal weights.
            positive = [(p, 1.0) for p, _ in weighted]
        scores = self._scores
        total = 0.0
        best: Path | None = None
        best_score = -math.inf
        for path, w in positive:
            score = scores.get(path.path_id, 0.0) + w
            scores[path.path_id] = score
            total += w
            if score > best_score:
                best, best_score = path, score
        if best is None:  # unreachable: positive is not empty
            return fastest(pool)
        scores[best.path_id] = best_score - total
        if len(scores) > 4 * len(paths) + 8:
            # Forget abandoned paths so the table stays bounded.
            live = {p.path_id for p in paths}
            for pid in [pid for pid in scores if pid not in live]:
                del scores[pid]
        return best


def _check_weight(weight: float, name: str) -> None:
    if not (weight >= 0 and math.isfinite(weight)):
        raise ValueError(f"{name}: a weight must be a finite number >= 0, got {weight!r}")

"""How many repairs a block gets, with which code, and which path they should take.

``FixedRepair`` is a fixed ratio (XOR k:1, RS k:m, or ``redundant`` = 1:1
copies).  ``AdaptiveRepair`` follows the loss the receiver reports per path
(loss.py): for a block of k sources it picks the smallest m whose predicted
residual loss meets ``target_loss``, never more than ``max_overhead`` of the
block's bytes, and none at all while every path the sources took loses less
than ``off_below``.  Both send repairs on another path than the sources when
one is known: a burst on one link then cannot take a block's sources and its
repairs together (path diversity).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tquic.bond.fec.codes import MAX_SYMBOLS, Code
from tquic.bond.fec.loss import LossEstimate, PathId, PathLoss, residual
from tquic.bond.fec.wire import REPAIR_HEADER, SOURCE_HEADER


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """The repairs of one block: ``m`` of ``code``, on ``path`` (a hint; None = any)."""

    code: Code
    m: int
    path: PathId


class RepairPolicy(Protocol):
    """What an encoder asks when a block closes, and tells when feedback arrives."""

    @property
    def max_block(self) -> int: ...

    def plan(self, source_paths: Sequence[PathId], source_bytes: int, symbol_len: int) -> BlockPlan: ...

    def enough(self, k: int, source_bytes: int, symbol_len: int) -> bool:
        """Whether a block of k sources may close before its deadline (when its flow
        pauses): False while it is too small to carry a single repair."""
        ...

    def observe(self, path: PathId, lost: bool) -> None: ...

    def set_paths(self, paths: Sequence[int]) -> None:
        """The paths the tunnel may send on (repair candidates before any feedback
        names them); empty: only the paths seen in feedback."""
        ...


def _other_path(source_paths: Sequence[PathId], known: Sequence[PathId],
                loss: dict[PathId, PathLoss] | None = None) -> PathId:
    """A path for repairs: the least lossy known path that carried none of the sources,
    else the least used one; None when no path is known."""
    candidates = [p for p in known if p is not None]
    for p in source_paths:
        if p is not None and p not in candidates:
            candidates.append(p)
    if not candidates:
        return None
    used = Counter(source_paths)

    def cost(p: PathId) -> tuple[int, float]:
        mean = loss[p].estimate().mean if loss is not None and p in loss else 0.0
        return used.get(p, 0), mean

    return min(candidates, key=cost)


class FixedRepair:
    """A fixed code: ``m`` repairs per ``k`` sources, scaled down for a short block.

    A block the deadline closed early (fewer than k sources) keeps the ratio,
    rounded up: at least one repair whenever m > 0.
    """

    __slots__ = ("_code", "_k", "_known", "_loss", "_m", "_paths")

    def __init__(self, code: Code, k: int, m: int,
                 loss: dict[PathId, PathLoss] | None = None) -> None:
        if code is Code.XOR and m != 1:
            raise ValueError(f"XOR parity needs m=1, got m={m}")
        if k < 1 or m < 0 or k + m > MAX_SYMBOLS:
            raise ValueError(f"need k >= 1, m >= 0, k + m <= {MAX_SYMBOLS}; got k={k}, m={m}")
        self._code, self._k, self._m = code, k, m
        self._known: list[PathId] = []
        self._paths: tuple[int, ...] = ()
        # measured for the session (which path the sources keep to), not for m
        self._loss = loss

    @property
    def max_block(self) -> int:
        return self._k

    def plan(self, source_paths: Sequence[PathId], source_bytes: int, symbol_len: int) -> BlockPlan:
        k = len(source_paths)
        m = min(math.ceil(self._m * k / self._k), MAX_SYMBOLS - k)
        return BlockPlan(self._code, m,
                         _other_path(source_paths, [*self._paths, *self._known], self._loss))

    def enough(self, k: int, source_bytes: int, symbol_len: int) -> bool:
        return True

    def observe(self, path: PathId, lost: bool) -> None:
        if path not in self._known:
            self._known.append(path)
        if self._loss is not None:
            pl = self._loss.get(path)
            if pl is None:
                pl = self._loss[path] = PathLoss()
            pl.observe(lost)

    def set_paths(self, paths: Sequence[int]) -> None:
        self._paths = tuple(paths)


class AdaptiveRepair:
    """Repairs that follow the measured loss (see the module docstring)."""

    __slots__ = ("_loss", "_max_block", "_max_overhead", "_off_below", "_paths", "_prior",
                 "_target", "_window")

    def __init__(self, max_block: int = 32, max_overhead: float = 0.25,
                 target_loss: float = 0.001, off_below: float = 0.002,
                 prior: float = 0.01, window: int = 500,
                 loss: dict[PathId, PathLoss] | None = None) -> None:
        if not 1 <= max_block < MAX_SYMBOLS:
            raise ValueError(f"max_block must be in 1..{MAX_SYMBOLS - 1}, got {max_block}")
        self._max_block = max_block
        self._max_overhead = max_overhead
        self._target = target_loss
        self._off_below = off_below
        self._prior = prior
        self._window = window
        # shared by the policies of one session: every stream's feedback measures the paths
        self._loss: dict[PathId, PathLoss] = loss if loss is not None else {}
        self._paths: tuple[int, ...] = ()

    @property
    def max_block(self) -> int:
        return self._max_block

    def estimate(self, path: PathId) -> LossEstimate:
        """The path's loss as measured so far (the prior for a path never reported)."""
        pl = self._loss.get(path)
        return pl.estimate() if pl is not None else LossEstimate(self._prior, 1.0, 0)

    def estimates(self) -> dict[PathId, LossEstimate]:
        return {p: pl.estimate() for p, pl in self._loss.items()}

    def set_paths(self, paths: Sequence[int]) -> None:
        self._paths = tuple(paths)

    def observe(self, path: PathId, lost: bool) -> None:
        pl = self._loss.get(path)
        if pl is None:
            pl = self._loss[path] = PathLoss(self._prior, self._window)
        pl.observe(lost)

    def _m_max(self, k: int, source_bytes: int, symbol_len: int) -> int:
        """Ceiling in bytes: repairs and FEC headers within max_overhead of the sources."""
        budget = self._max_overhead * source_bytes - k * SOURCE_HEADER
        if budget <= 0:
            return 0
        return min(int(budget // (symbol_len + REPAIR_HEADER)), MAX_SYMBOLS - k)

    def enough(self, k: int, source_bytes: int, symbol_len: int) -> bool:
        return k >= self._max_block or self._m_max(k, source_bytes, symbol_len) >= 1

    def plan(self, source_paths: Sequence[PathId], source_bytes: int, symbol_len: int) -> BlockPlan:
        k = len(source_paths)
        repair_path = _other_path(source_paths, [*self._paths, *self._loss], self._loss)
        counts = Counter(source_paths)
        groups = [(self.estimate(p), n) for p, n in counts.items()]
        if all(est.mean < self._off_below for est, _ in groups):
            return BlockPlan(Code.RS, 0, repair_path)
        m_max = self._m_max(k, source_bytes, symbol_len)
        repair_est = self.estimate(repair_path)
        m = 0
        for m in range(1, m_max + 1):
            if residual(groups, [(repair_est, m)], k, m) <= self._target:
                break
        return BlockPlan(Code.XOR if m == 1 else Code.RS, m, repair_path)

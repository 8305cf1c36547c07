"""Namespaces and shaped veths for the real-interface tests; skipped without root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tquic.testing.bonding import BondingLab
from tquic.testing.netns import unavailable_reason

# Link 1 at 20 Mbit/s, link 2 at 10 Mbit/s (tbf on both ends of each veth).
RATES = (20.0, 10.0)
# 8 MB: about 3.3 s on link 1 alone, 2.2 s bonded; long enough that start-up
# (slow start on a queue of 50 ms) weighs little in the goodput.
SIZE = 8_000_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BondingLab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"real-interface tests need network namespaces: {reason}")
    with BondingLab(RATES, tmp_path_factory.mktemp("netns"), size=SIZE) as lab:
        yield lab

"""``epoch``: outage times count from netem's start, or from the first client datagram
(so a benchmark can cut a link "2.5 s into the transfer" whatever the client's start-up
took).  Each test takes under two seconds."""

from __future__ import annotations

import re
import time

import pytest
from netem_udp import client, relay, wait_for

from tquic.netem.relay import NetemRelay
from tquic.netem.spec import LinkTable

pytestmark = pytest.mark.timeout(20)


def late_then_later(epoch: str) -> tuple[int, int, list[str]]:
    """Wait 0.5 s, send one datagram, wait 0.45 s, send another, through a link that is
    down from 0.3 s for good; (first delivered?, second delivered?, netem's lines)."""
    lines: list[str] = []
    with relay("127.0.0.2=outage=0.3s-", epoch=epoch, out=lines.append) as (netem, target):
        s = client("127.0.0.2")
        time.sleep(0.5)
        sent_at = time.monotonic()
        s.sendto(b"first", netem.address)
        wait_for(lambda: netem.relay.stats() and netem.relay.stats()[0].up.offered == 1, 2.0)
        time.sleep(0.45)
        s.sendto(b"second", netem.address)
        wait_for(lambda: netem.relay.stats()[0].up.offered == 2, 2.0)
        time.sleep(0.05)
        s.close()
        got = target.payloads()
        if epoch == "first":
            first_at = netem.relay.first_datagram_at
            assert first_at is not None and 0 <= first_at - sent_at < 0.1
            assert netem.origin == first_at
    return int(b"first" in got), int(b"second" in got), lines


def test_epoch_start_counts_outages_from_the_relay_start() -> None:
    first, second, lines = late_then_later("start")
    assert (first, second) == (0, 0)  # 0.5 s after the start the link is already down
    assert not any("clock started" in line for line in lines)


def test_epoch_first_counts_outages_from_the_first_datagram() -> None:
    first, second, lines = late_then_later("first")
    assert (first, second) == (1, 0)  # 0 s and 0.45 s after the first datagram
    (line,) = [line for line in lines if "clock started" in line]
    assert re.search(r"from 127\.0\.0\.2:\d+ \(monotonic \d+\.\d{6}\)", line)


def test_unknown_epoch_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="epoch: must be one of start, first"):
        NetemRelay(("127.0.0.1", 0), ("127.0.0.1", 9), LinkTable(), epoch="later")


def test_deliveries_held_up_by_a_busy_relay_are_counted_late() -> None:
    lines: list[str] = []
    with relay("127.0.0.2=delay=20ms", out=lines.append) as (netem, target):
        s = client("127.0.0.2")
        for _ in range(5):
            s.sendto(b"x", netem.address)
        wait_for(lambda: netem.relay.stats() and netem.relay.stats()[0].up.offered == 5, 2.0)
        loop = netem.relay.loop
        assert loop is not None
        # The relay's loop is busy for 80 ms while the datagrams sit in the 20 ms delay
        # line: each leaves ~60 ms behind the model, and the stats say so.
        loop.call_soon_threadsafe(time.sleep, 0.08)
        wait_for(lambda: len(target.received) == 5, 2.0)
        s.close()
        (stats,) = netem.relay.stats()
        netem.relay.report()
    late = stats.up_late
    assert late.delivered == 5 and late.late == 5
    assert 0.03 < late.max < 0.5 and late.mean > 0.03
    assert stats.down_late.delivered == 0
    assert any("late=5 (mean" in line for line in lines)

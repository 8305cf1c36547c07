"""tquic netem on loopback with plain UDP sockets: delay, rate, loss, outages, per-source
profiles, replies mapped back, bounds.  Every test takes well under a few seconds."""

from __future__ import annotations

import math
import time

import pytest
from netem_udp import client, relay, wait_for

pytestmark = pytest.mark.timeout(20)


def rtt_via(sock_host: str, address: tuple[str, int]) -> float:
    s = client(sock_host)
    try:
        start = time.monotonic()
        s.sendto(b"ping", address)
        data, _ = s.recvfrom(100)
        assert data == b"ping"
        return time.monotonic() - start
    finally:
        s.close()


def test_delay_is_added_in_both_directions_per_source_address() -> None:
    with relay("127.0.0.2=delay=50ms", "127.0.0.3=delay=0ms", echo=True) as (netem, _):
        slow = rtt_via("127.0.0.2", netem.address)
        fast = rtt_via("127.0.0.3", netem.address)
    assert 0.095 <= slow < 0.16  # 50 ms up + 50 ms down
    assert fast < 0.03


def test_asymmetric_delay() -> None:
    with relay("127.0.0.2=up.delay=80ms,down.delay=10ms", echo=True) as (netem, _):
        assert 0.088 <= rtt_via("127.0.0.2", netem.address) < 0.15


def test_rate_limits_throughput_within_tolerance() -> None:
    # 150 datagrams of 1000 bytes at 4 Mbit/s: the last leaves 149 * 2 ms after the first.
    with relay("127.0.0.2=rate=4mbit,queue=1000", echo=False) as (netem, target):
        s = client("127.0.0.2")
        for i in range(150):
            s.sendto(i.to_bytes(4, "big") + bytes(996), netem.address)
        wait_for(lambda: len(target.received) >= 150, 3.0)
        s.close()
        times = [t for t, _ in target.received]
    assert len(times) == 150
    span = times[-1] - times[0]
    assert span == pytest.approx(149 * 1000 * 8 / 4e6, rel=0.15)


def test_queue_overflow_is_tail_dropped() -> None:
    with relay("127.0.0.2=rate=1mbit,queue=10") as (netem, target):
        s = client("127.0.0.2")
        for _ in range(40):
            s.sendto(bytes(1000), netem.address)
        time.sleep(0.25)  # 11 datagrams * 8 ms
        s.close()
        stats = netem.relay.stats()
    (flow,) = stats
    assert flow.up.drops("queue") >= 25
    assert len(target.received) == flow.up.delivered <= 15


def send_numbered(address: tuple[str, int], count: int, gap_every: int = 50) -> None:
    s = client("127.0.0.2")
    for i in range(count):
        s.sendto(i.to_bytes(4, "big"), address)
        if i % gap_every == gap_every - 1:
            time.sleep(0.005)  # let the loopback socket buffers drain
    s.close()


def delivered_set(seed: int) -> set[int]:
    with relay("127.0.0.2=loss=30%", seed=seed) as (netem, target):
        send_numbered(netem.address, 400)
        wait_for(lambda: netem.relay.stats() and netem.relay.stats()[0].up.offered == 400, 2.0)
        time.sleep(0.05)
        return {int.from_bytes(d, "big") for d in target.payloads()}


def test_loss_rate_for_a_seed_is_near_the_profile_and_repeatable() -> None:
    first = delivered_set(seed=7)
    # Binomial(400, 0.7): mean 280, sd 9.2; 4 sd either side.
    assert abs(len(first) - 280) < 37
    assert delivered_set(seed=7) == first
    assert delivered_set(seed=8) != first


def test_outage_drops_everything_inside_its_window() -> None:
    with relay("127.0.0.2=outage=0.3s-0.6s") as (netem, target):
        s = client("127.0.0.2")
        sent: list[tuple[int, float]] = []
        i = 0
        while (elapsed := time.monotonic() - netem.origin) < 0.9:
            s.sendto(i.to_bytes(4, "big"), netem.address)
            sent.append((i, elapsed))
            i += 1
            time.sleep(0.02)
        time.sleep(0.05)
        s.close()
        got = {int.from_bytes(d, "big") for d in target.payloads()}
        stats = netem.relay.stats()[0]
    inside = {n for n, t in sent if 0.32 < t < 0.58}
    outside = {n for n, t in sent if t < 0.28 or t > 0.62}
    assert inside and outside
    assert not inside & got
    assert outside <= got
    assert stats.up.drops("outage") >= len(inside)


def test_replies_go_back_to_the_client_that_sent() -> None:
    with relay("127.0.0.2=delay=5ms", echo=True) as (netem, _):
        a, b = client("127.0.0.2"), client("127.0.0.2")
        a.sendto(b"from a", netem.address)
        b.sendto(b"from b", netem.address)
        assert a.recvfrom(100)[0] == b"from a"
        assert b.recvfrom(100)[0] == b"from b"
        assert len(netem.relay.stats()) == 2  # one upstream socket per client address
        a.close()
        b.close()


def test_limit_bounds_what_a_direction_holds() -> None:
    with relay("127.0.0.2=delay=300ms,limit=10") as (netem, _):
        s = client("127.0.0.2")
        for _ in range(50):
            s.sendto(b"x", netem.address)
        wait_for(lambda: netem.relay.stats() and netem.relay.stats()[0].up_overflow
                 + netem.relay.stats()[0].up.offered == 50, 2.0)
        flow = netem.relay.stats()[0]
        s.close()
    assert flow.up.offered == 10 and flow.up_overflow == 40


def test_clients_beyond_max_clients_are_refused() -> None:
    with relay(echo=True, max_clients=1) as (netem, _):
        assert rtt_via("127.0.0.2", netem.address) < 1
        s = client("127.0.0.3")
        s.settimeout(0.2)
        s.sendto(b"x", netem.address)
        with pytest.raises(TimeoutError):
            s.recvfrom(10)
        s.close()
        assert netem.relay.refused == 1


def test_stats_lines_at_stop() -> None:
    lines: list[str] = []
    with relay("127.0.0.2=delay=1ms,loss=0", echo=True, out=lines.append) as (netem, _):
        rtt_via("127.0.0.2", netem.address)
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("netem total 127.0.0.2:")
    assert "[delay=1ms,loss=0]" in line and "up: 1/1 pkt 4 B" in line
    assert "down: 1/1 pkt" in line and "limit=0" in line


def test_corruption_flips_bits_in_a_copy() -> None:
    with relay("127.0.0.2=corrupt=100%") as (netem, target):
        s = client("127.0.0.2")
        s.sendto(bytes(64), netem.address)
        wait_for(lambda: target.received, 2.0)
        s.close()
        (data,) = target.payloads()
    assert len(data) == 64 and data != bytes(64)
    assert sum(bin(b).count("1") for b in data) == 1


def test_unreachable_target_does_not_break_the_relay() -> None:
    with relay("127.0.0.2=delay=0ms", echo=True) as (netem, target):
        target.close()  # the target port is now closed: ICMP port unreachable
        s = client("127.0.0.2")
        for _ in range(5):
            s.sendto(b"x", netem.address)
            time.sleep(0.01)
        s.close()
        assert netem.relay.stats()[0].up.offered == 5
        assert math.isfinite(netem.relay.origin)

"""The namespace fixture itself: it shapes, it cleans up, it sweeps what a dead run left."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tquic.testing.netns import LinkSpec, Topology, sweep_stale_namespaces, unavailable_reason

pytestmark = pytest.mark.timeout(60)


def _needs_namespaces() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"real-interface tests need network namespaces: {reason}")


def test_without_root_the_tests_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs everywhere: what a user without privileges gets instead of a failure.
    unavailable_reason.cache_clear()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    try:
        reason = unavailable_reason()
    finally:
        unavailable_reason.cache_clear()
    if sys.platform.startswith("linux"):
        assert reason is not None and "root" in reason
    else:
        assert reason is not None


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(" ", 1)[0] for line in out.splitlines()}


def test_close_kills_processes_and_deletes_both_namespaces() -> None:
    _needs_namespaces()
    net = Topology([LinkSpec(10), LinkSpec(20)])
    with net:
        assert {net.client_ns, net.server_ns} <= _namespaces()
        proc = net.spawn("server", [sys.executable, "-c", "import time; time.sleep(60)"])
        shown = subprocess.run(["tc", "-n", net.server_ns, "qdisc", "show", "dev", "lan2"],
                               capture_output=True, text=True, check=True).stdout
        assert "tbf" in shown and "20Mbit" in shown
    assert proc.poll() is not None
    assert not {net.client_ns, net.server_ns} & _namespaces()


def test_a_failure_while_building_leaves_nothing_behind() -> None:
    _needs_namespaces()
    net = Topology([LinkSpec(10)])
    net.links = (*net.links, net.links[0])  # the same veth twice: the second add fails
    with pytest.raises(RuntimeError):
        net.build()
    assert not {net.client_ns, net.server_ns} & _namespaces()


def test_namespaces_of_a_dead_run_are_swept() -> None:
    _needs_namespaces()
    stale = "tquic-4194999-1-c"  # above any pid_max: that process cannot exist
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        assert stale in sweep_stale_namespaces()
        assert stale not in _namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)


def test_link_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="rate_mbit"):
        LinkSpec(0)
    with pytest.raises(ValueError, match="queue_ms"):
        LinkSpec(10, queue_ms=0)
    assert LinkSpec(50).burst_bytes >= 50e6 / 8 / 250  # one 4 ms tick at HZ=250


def _udp_leaves_through(net: Topology, source: str, target: str) -> tuple[int, int]:
    """Send 20 x 1000 bytes from ``source`` (no interface pinning); (wan1, wan2) tx growth."""
    before = [net.counters(k)[1] for k in (1, 2)]
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.bind(({source!r}, 0)); "
            f"[s.sendto(bytes(1000), ({target!r}, 9)) for _ in range(20)]")
    subprocess.run(net.argv("client", [sys.executable, "-c", code]), check=True, timeout=30)
    after = [net.counters(k)[1] for k in (1, 2)]
    return after[0] - before[0], after[1] - before[1]


def test_an_unpinned_socket_follows_the_best_route_unless_source_routing_is_on() -> None:
    _needs_namespaces()
    # Link 2's address sending to link 1's server address: the main table says wan1.
    with Topology([LinkSpec(50), LinkSpec(50)]) as net:
        wan1, wan2 = _udp_leaves_through(net, "10.77.2.1", "10.77.1.2")
        assert wan1 >= 20_000 and wan2 < 2_000
    # "ip rule from 10.77.2.1 table 102": the same socket now leaves through wan2.
    with Topology([LinkSpec(50), LinkSpec(50)], source_routing=True) as net:
        wan1, wan2 = _udp_leaves_through(net, "10.77.2.1", "10.77.1.2")
        assert wan2 >= 20_000 and wan1 < 2_000


def test_a_link_taken_down_and_up_again_gets_its_route_back() -> None:
    _needs_namespaces()
    with Topology([LinkSpec(50), LinkSpec(50)]) as net:
        net.set_link(1, False)
        net.set_link(1, True)
        routes = subprocess.run(["ip", "-n", net.client_ns, "route", "show", "default"],
                                capture_output=True, text=True, check=True).stdout
        assert "dev wan1" in routes and "dev wan2" in routes

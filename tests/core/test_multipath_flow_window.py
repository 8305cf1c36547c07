"""Receive-window auto-tuning with several paths uses the slowest path's span (smoothed
RTT + 4 rttvar): in-order delivery waits for the slowest path, so the window must cover
the aggregate rate over it (RFC 9000 §4.2 leaves the policy to the receiver)."""

from __future__ import annotations

from engine_pairs import LINK_A, LINK_B, mp_pair

from tquic.core.frame_handlers import window_tuning_rtt
from tquic.testing.engines import Link


def test_window_tuning_rtt_is_the_slowest_paths_with_multipath() -> None:
    loop = mp_pair(links={LINK_A: Link(delay=0.01), LINK_B: Link(delay=0.1)})
    client, server = loop.client, loop.server
    loop.run_until(lambda: client.can_open_path, timeout=2)
    path_id = client.add_path(LINK_B, None, loop.now)
    loop.run_until(lambda: server.paths.get(path_id) is not None
                   and server.paths.get(path_id).validated,  # type: ignore[union-attr]
                   timeout=2)
    fast, slow = server.paths.get(0), server.paths.get(path_id)
    assert fast is not None and slow is not None
    assert slow.recovery.rtt.smoothed_rtt > 3 * fast.recovery.rtt.smoothed_rtt
    # Data arriving on the fast path still tunes the window with the slow path's span:
    # its RTT plus the time a hole left by a loss there can last (a PTO, RFC 9002).
    r = slow.recovery.rtt
    rtt = window_tuning_rtt(server.paths, fast, server.multipath_enabled)
    assert rtt == max(r.smoothed_rtt + 4 * r.rttvar,
                      fast.recovery.rtt.smoothed_rtt + 4 * fast.recovery.rtt.rttvar)
    assert rtt >= r.smoothed_rtt


def test_one_path_keeps_its_own_rtt() -> None:
    loop = mp_pair(client_max_path_id=None, server_max_path_id=None,
                   links={LINK_A: Link(delay=0.01)})
    path = loop.server.paths.get(0)
    assert path is not None
    assert not loop.server.multipath_enabled
    assert (window_tuning_rtt(loop.server.paths, path, loop.server.multipath_enabled)
            == path.recovery.rtt.smoothed_rtt)

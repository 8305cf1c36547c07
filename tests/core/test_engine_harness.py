"""tquic.testing.engines: two engines in memory with explicit time.  run_until raises
when its condition does not hold in time, advance moves time by exactly what it is
told, and each client address has its own link."""

from __future__ import annotations

import pytest
from engine_certs import server_config
from engine_fake_tls import fake_tls_factory

from tquic.core.config import QuicConfiguration
from tquic.core.events import ConnectionTerminated
from tquic.sim.profile import LinkProfile
from tquic.testing.engines import CLIENT_ADDR, SERVER_ADDR, EnginePair, EngineTimeout, Link

SECOND_ADDR = ("10.0.1.1", 4433)


def _client(**kwargs: object) -> QuicConfiguration:
    return QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                             **kwargs)  # type: ignore[arg-type]


def test_a_stream_crosses_and_run_until_returns_when_it_arrived() -> None:
    pair = EnginePair.connected(_client(), server_config(), tls_factory=fake_tls_factory)
    assert pair.client.handshake_confirmed
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x" * 50_000, end_stream=True)
    started = pair.now
    pair.run_until(lambda: pair.received(sid)[1], timeout=2.0, what="the stream's end")
    assert pair.received(sid) == (b"x" * 50_000, True)
    assert started < pair.now < started + 2.0


def test_run_until_raises_when_the_condition_never_holds() -> None:
    pair = EnginePair.connected(_client(), server_config(), tls_factory=fake_tls_factory)
    started = pair.now
    with pytest.raises(EngineTimeout, match=r"nothing did not hold within 0\.5 s"):
        pair.run_until(lambda: False, timeout=0.5, what="nothing")
    assert pair.now <= started + 0.5 + 1e-9


def test_advance_moves_time_by_dt_and_runs_the_timers_on_the_way() -> None:
    pair = EnginePair.connected(_client(idle_timeout=1.0), server_config(idle_timeout=1.0),
                                tls_factory=fake_tls_factory)
    started = pair.now
    pair.advance(0.25)
    assert pair.now == pytest.approx(started + 0.25)
    assert not pair.client.is_closed
    pair.advance(5.0)  # well past the idle timeout (at least three PTOs, RFC 9000 §10.1)
    assert pair.client.is_closed and pair.server.is_closed
    assert any(isinstance(e, ConnectionTerminated) for e in pair.client_events)


def test_a_path_from_another_address_travels_over_its_own_link() -> None:
    links = {("10.0.0.1", 4433): Link(delay=0.01), SECOND_ADDR: Link(delay=0.03)}
    pair = EnginePair.connected(_client(max_path_id=2), server_config(max_path_id=2),
                                tls_factory=fake_tls_factory, links=links)
    pair.run_until(lambda: pair.client.can_open_path, timeout=1.0)
    path_id = pair.client.add_path(SECOND_ADDR, None, pair.now)
    pair.run_until(lambda: (p := pair.server.paths.get(path_id)) is not None and p.validated,
                   timeout=1.0, what="the second path validated")
    assert links[SECOND_ADDR].datagrams["up"] > 0 and links[SECOND_ADDR].datagrams["down"] > 0


def test_a_link_that_is_down_carries_nothing() -> None:
    pair = EnginePair.connected(_client(), server_config(), tls_factory=fake_tls_factory)
    link = pair.links[pair.client_addr]
    link.up = False
    before = dict(link.datagrams)
    pair.client.send_stream_data(pair.client.open_stream(), b"lost", end_stream=True)
    pair.advance(0.5)
    assert link.datagrams == before


def test_what_the_client_sends_where_the_server_does_not_listen_is_lost() -> None:
    pair = EnginePair.connected(_client(), server_config(), tls_factory=fake_tls_factory)
    assert pair.client_sent_to and set(pair.client_sent_to) == {SERVER_ADDR}
    pair.server_addrs = ()  # the server receives nowhere: every client datagram is lost
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, b"x" * 1000, end_stream=True)
    sent = len(pair.client_sent_to)
    pair.advance(0.5)
    assert len(pair.client_sent_to) > sent  # the client did send (and retransmit)
    assert pair.received(sid) == (b"", False)
    pair.server_addrs = (SERVER_ADDR,)
    pair.run_until(lambda: pair.received(sid)[1], timeout=5, what="the stream after the outage")
    assert pair.received(sid) == (b"x" * 1000, True)


def test_a_timer_that_stays_due_raises_instead_of_hanging() -> None:
    pair = EnginePair.connected(_client(), server_config(), tls_factory=fake_tls_factory)
    pair.server.next_timeout = lambda: pair.now  # type: ignore[method-assign]
    pair.server.handle_timeout = lambda now: None  # type: ignore[method-assign]
    with pytest.raises(EngineTimeout, match="time stopped"):
        pair.run_until(lambda: False, timeout=1.0)


def _over_profile(profile: LinkProfile, seed: int, size: int) -> tuple[EnginePair, float]:
    """A pair over one tquic.sim link; the virtual seconds ``size`` bytes take."""
    pair = EnginePair.connected(_client(), server_config(), tls_factory=fake_tls_factory,
                                links={CLIENT_ADDR: Link(profile=profile)}, seed=seed,
                                timeout=10)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, bytes(size), end_stream=True)
    started = pair.now
    pair.run_until(lambda: pair.received(sid)[1], timeout=30, what="the transfer")
    assert pair.received(sid) == (bytes(size), True)
    return pair, pair.now - started


def test_a_sim_profile_link_carries_the_traffic_at_its_rate_and_delay() -> None:
    profile = LinkProfile(rate_bps=8e6, delay=0.02)
    pair, took = _over_profile(profile, seed=1, size=400_000)
    assert took >= 400_000 * 8 / 8e6  # never faster than the rate
    up = pair.links[CLIENT_ADDR].pipes["up"].stats()
    assert up.delivered_bytes >= 400_000 and up.total_dropped == 0
    assert pair.client.paths.primary.recovery.rtt.min_rtt >= 0.04  # two one-way delays


def test_a_lossy_sim_profile_link_drops_with_the_pairs_seed_and_the_data_still_arrives(
        ) -> None:
    profile = LinkProfile(rate_bps=20e6, delay=0.01, loss=0.05)
    first, took = _over_profile(profile, seed=3, size=300_000)
    assert first.links[CLIENT_ADDR].pipes["up"].stats().drops("loss") > 0
    again, took_again = _over_profile(profile, seed=3, size=300_000)
    assert took_again == took  # the same seed draws the same losses
    assert (again.links[CLIENT_ADDR].pipes["up"].stats()
            == first.links[CLIENT_ADDR].pipes["up"].stats())

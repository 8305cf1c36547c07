"""Link policy (roles, caps, cut-offs, the never-slower guard), caps persistence, the pool,
the datagram pipeline's stage seam and the token check."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from tquic.bond.auth import Authenticator, hash_token
from tquic.bond.caps import CapStore, period_key
from tquic.bond.config import ClientEntry
from tquic.bond.links_config import parse_cap, parse_link
from tquic.bond.pipeline import DatagramPipeline, Emit
from tquic.bond.policy import LinkPolicy, LinkView
from tquic.bond.pool import AddressPool

A = parse_link("10.0.1.1%a,max_rtt=200ms,max_loss=10%")
B = parse_link("10.0.2.1%b")
CONFIGS = {"a": A, "b": B}


def view(name: str, *, srtt: float = 0.03, loss: float = 0.0, goodput: float = 1e6,
         busy: bool = True, **kw: bool) -> LinkView:
    return LinkView(name, True, srtt, loss, goodput, busy, **kw)


def test_never_cap_and_operator() -> None:
    policy = LinkPolicy(guard=False)
    never = {"a": parse_link("10.0.1.1%a,role=never"), "b": B}
    out = policy.decide([view("a"), view("b", admin_down=True)], never, 0.0)
    assert out["a"].role == "never" and out["b"].role == "never"
    assert "operator" in out["b"].reason
    out = policy.decide([view("a", cap_reached=True), view("b")], CONFIGS, 0.0)
    assert out["a"].role == "backup" and out["a"].reason == "data cap reached"


def test_rtt_cut_off_holds_then_recovers_with_hysteresis() -> None:
    policy = LinkPolicy(guard=False, hold=3.0, recover=5.0)
    slow = view("a", srtt=0.35)
    assert policy.decide([slow, view("b")], CONFIGS, 0.0)["a"].role == "primary"
    assert policy.decide([slow, view("b")], CONFIGS, 2.9)["a"].role == "primary"
    out = policy.decide([slow, view("b")], CONFIGS, 3.0)
    assert out["a"].role == "backup" and "max_rtt 200 ms" in out["a"].reason
    # 190 ms is under the limit but not under 0.8 x: still demoted.
    assert policy.decide([view("a", srtt=0.19), view("b")], CONFIGS, 20.0)["a"].role == "backup"
    ok = view("a", srtt=0.05)
    assert policy.decide([ok, view("b")], CONFIGS, 21.0)["a"].role == "backup"
    assert policy.decide([ok, view("b")], CONFIGS, 26.0)["a"].role == "primary"


def test_loss_cut_off() -> None:
    policy = LinkPolicy(guard=False, hold=0.0)
    out = policy.decide([view("a", loss=0.2), view("b")], CONFIGS, 0.0)
    assert out["a"].role == "backup" and "loss 20.0%" in out["a"].reason


def _run_guard(policy: LinkPolicy, with_all: float, without: float,
               start: float = 0.0) -> tuple[str, str]:
    t = start
    role = ""
    for _ in range(20):
        out = policy.decide([view("a", goodput=with_all / 2 if role != "backup" else 0.0),
                             view("b", goodput=with_all / 2 if role != "backup" else without)],
                            CONFIGS, t)
        role = out["a"].role
        t += 0.5
    return out["a"].role, out["a"].reason


def test_guard_demotes_a_link_that_makes_the_bond_slower() -> None:
    policy = LinkPolicy(probe_time=2.0, probe_every=30.0)
    # 1 MB/s with both; 2 MB/s when "a" is left out: "a" drags the bond down.
    role, reason = _run_guard(policy, 1e6, 2e6)
    assert role == "backup" and "guard" in reason and "without" in reason


def test_guard_keeps_a_link_that_helps() -> None:
    policy = LinkPolicy(probe_time=2.0, probe_every=30.0)
    role, _ = _run_guard(policy, 2e6, 1e6)
    assert role == "primary"


def test_guard_waits_for_demand() -> None:
    policy = LinkPolicy(probe_time=1.0)
    for t in range(10):
        out = policy.decide([view("a", busy=False), view("b", busy=False)], CONFIGS, t * 0.5)
        assert out["a"].role == "primary" and out["b"].role == "primary"


def test_caps_persist_across_restarts_and_reset_with_the_period(tmp_path: Path) -> None:
    cap = parse_cap("1GB/month")
    path = str(tmp_path / "caps.json")
    store = CapStore(path)
    store.add("lte", cap, 600_000_000)
    store.save()
    again = CapStore(path)
    assert again.used("lte", cap) == 600_000_000
    next_month = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=32)
    assert again.used("lte", cap, next_month) == 0
    assert period_key("week", datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)) == "2026-W50"
    (tmp_path / "bad.json").write_text("{nonsense")
    assert CapStore(str(tmp_path / "bad.json")).used("lte", cap) == 0  # warned, from zero


def test_pool_assigns_hosts_keeps_them_per_client_and_frees_them() -> None:
    pool = AddressPool([ipaddress.ip_network("10.99.0.0/29")])
    assert str(pool.gateways[0]) == "10.99.0.1/32"
    a = pool.allocate("a")
    b = pool.allocate("b")
    assert str(a[0]) == "10.99.0.2/32" and str(b[0]) == "10.99.0.3/32"
    pool.release("a", a)
    assert pool.allocate("a") == a  # the same address back on reconnect
    for name in "cde":
        pool.allocate(name)
    try:
        pool.allocate("f")
    except RuntimeError as exc:
        assert "no free address" in str(exc)
    else:
        raise AssertionError("a /29 has 6 hosts: the 7th client must be refused")


def test_dual_stack_pool_gives_a_reconnecting_client_both_addresses_back() -> None:
    pool = AddressPool([ipaddress.ip_network("10.99.0.0/29"), ipaddress.ip_network("fd99::/64")])
    first = pool.allocate("a")
    assert [str(n) for n in first] == ["10.99.0.2/32", "fd99::2/128"]
    pool.release("a", first)
    assert pool.allocate("a") == first  # each family from its own pool, not a TypeError


class _Xor:
    """A toy stage on context 4: after every 2 datagrams, a repair datagram."""

    def __init__(self) -> None:
        self.window: list[bytes] = []

    def outbound(self, datagram: bytes, emit: Emit, now: float) -> None:
        emit(datagram)
        self.window.append(datagram)
        if len(self.window) == 2:
            emit(b"\x04repair")
            self.window = []

    def inbound(self, datagram: bytes, emit: Emit, now: float) -> None:
        if datagram[:1] != b"\x04":
            emit(datagram)  # repair datagrams are swallowed here


def test_pipeline_stages_and_context_handlers() -> None:
    wire: list[bytes] = []
    delivered: list[bytes] = []
    sender = DatagramPipeline(wire.append, delivered.append, seq_context=2)
    sender.add_stage(_Xor())
    for n in range(4):
        sender.send_packet(b"pkt%d" % n, 0.0)
    assert len(wire) == 6 and wire[2] == b"\x04repair"
    assert wire[0][:1] == b"\x02" and wire[0][1:5] == bytes(4)  # context 2, sequence 0
    receiver = DatagramPipeline(lambda d: None, delivered.append, seq_context=2)
    receiver.add_stage(_Xor())
    for datagram in reversed(wire):  # bound 0 (one path): passed through as they come
        receiver.receive_datagram(datagram, 0.0)
    assert sorted(delivered) == [b"pkt%d" % n for n in range(4)]
    receiver.receive_datagram(b"\x08unknown", 0.0)
    assert receiver.counters.unknown_context == 1
    plain = DatagramPipeline(wire.append, delivered.append)
    plain.send_packet(b"ip", 0.0)
    assert wire[-1] == b"\x00ip"


def test_tokens_are_compared_as_hashes() -> None:
    auth = Authenticator((ClientEntry("home", hash_token("s3cret")),), None, per_minute=2)
    assert auth.check("192.0.2.1", b"Bearer s3cret", 0.0).status == 200
    assert auth.check("192.0.2.1", b"Bearer nope", 0.0).status == 403
    assert auth.check("192.0.2.1", None, 1.0).status == 401
    assert auth.check("192.0.2.1", b"Bearer s3cret", 2.0).status == 429  # limited first
    assert auth.check("192.0.2.9", b"Bearer s3cret", 2.0).status == 200  # per source
    assert auth.check("192.0.2.1", b"Bearer s3cret", 70.0).status == 200  # a minute later


class _Rtt:
    def __init__(self, min_rtt: float) -> None:
        self.min_rtt = min_rtt
        self.smoothed_rtt = min_rtt
        self.has_sample = True


class _Pacer:
    def next_send_time(self, now: float, size: int) -> float:
        return now


class _Controller:
    congestion_window = 1 << 40


class _Recovery:
    def __init__(self, rate: float, min_rtt: float) -> None:
        self.rate = rate
        self.rtt = _Rtt(min_rtt)
        self.bytes_in_flight = 0
        self.pacer = _Pacer()
        self.controller = _Controller()

    def pacing_rate(self) -> float:
        return self.rate

    def can_send(self, size: int) -> bool:
        return True


class _Path:
    def __init__(self, path_id: int, rate: float, min_rtt: float) -> None:
        self.path_id = path_id
        self.recovery = _Recovery(rate, min_rtt)
        self.max_datagram_size = 1200
        self.validated = True


def test_bond_scheduler_spreads_packets_in_proportion_to_path_rates() -> None:
    from tquic.bond.scheduler import EarliestArrivalScheduler

    fast, slow = _Path(0, 2.5e6, 0.010), _Path(1, 1.25e6, 0.020)
    sched = EarliestArrivalScheduler(probe_interval=10.0)
    counts = {0: 0, 1: 0}
    now = 0.0
    for _ in range(3000):  # a packet every 0.3 ms (4 MB/s offered, more than both carry)
        for p in (fast, slow):
            r = p.recovery
            r.bytes_in_flight = max(0, r.bytes_in_flight - int(r.rate * 0.0003))
        chosen = sched.select([fast, slow], now)  # type: ignore[list-item]
        assert chosen is not None
        counts[chosen.path_id] += 1
        chosen.recovery.bytes_in_flight += 1200  # type: ignore[attr-defined]
        now += 0.0003
    share = counts[0] / sum(counts.values())
    assert 0.6 < share < 0.75, counts  # 2:1 like the rates


def test_bond_scheduler_still_selects_only_what_select_would_choose() -> None:
    """still_selects (asked by the send loop after each packet of a train) answers True
    only when select, asked again at the same instant, picks the same path."""
    import random

    from tquic.bond.scheduler import EarliestArrivalScheduler

    rng = random.Random(14)
    confirmed = 0
    for _ in range(300):
        paths = [_Path(k, rng.uniform(1e5, 5e6), rng.uniform(0.005, 0.1)) for k in range(3)]
        for p in paths:
            p.recovery.bytes_in_flight = rng.randrange(0, 60_000)
        sched = EarliestArrivalScheduler(probe_interval=10.0)
        now = rng.uniform(0, 5)
        chosen = sched.select(paths, now)  # type: ignore[arg-type]
        for _ in range(20):
            assert chosen is not None
            chosen.recovery.bytes_in_flight += 1200  # type: ignore[attr-defined]
            still = sched.still_selects(paths, now, chosen)  # type: ignore[arg-type]
            again = sched.select(paths, now)  # type: ignore[arg-type]
            if still:
                confirmed += 1
                assert again is chosen
            chosen = again
    assert confirmed > 100  # the cheap answer is given often, not only in corner cases
    sched = EarliestArrivalScheduler()
    paths = [_Path(0, 1e6, 0.01), _Path(1, 1e6, 0.01)]
    chosen = sched.select(paths, 1.0)  # type: ignore[arg-type]
    assert chosen is not None
    # Other paths, or another instant: select must be asked.
    assert not sched.still_selects(list(paths), 1.0, chosen)  # type: ignore[arg-type]
    assert not sched.still_selects(paths, 1.001, chosen)  # type: ignore[arg-type]


def test_bond_scheduler_probes_an_idle_path() -> None:
    from tquic.bond.scheduler import EarliestArrivalScheduler

    good, stale = _Path(0, 2.5e6, 0.010), _Path(1, 1e3, 0.300)  # stale: slow handshake RTT
    sched = EarliestArrivalScheduler(probe_interval=0.1)
    picked = [sched.select([good, stale], t * 0.01).path_id  # type: ignore[list-item, union-attr]
              for t in range(100)]
    assert 1 in picked and picked.count(1) <= 10

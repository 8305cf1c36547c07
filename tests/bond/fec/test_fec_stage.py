"""FEC as a stage of the tunnel's datagram pipeline: sequenced packets of an FEC class are
rebuilt after loss and reach the reorder buffer in order; other classes and contexts pass
untouched; the fec extension is negotiated like seq."""

from __future__ import annotations

import random

from fec_helpers import tcp4, udp4

from tquic.bond import extensions as ext
from tquic.bond.fec import FecConfig, FecSession
from tquic.bond.fec.stage import REPAIR_GROWTH, FecStage
from tquic.bond.pipeline import DatagramPipeline
from tquic.bond.reorder import ReorderBuffer

SEQ, FEC = ext.SEQ_CONTEXT_ID, ext.FEC_CONTEXT_ID
MAX_DATAGRAM = 1154


class _Side:
    """One tunnel end: pipeline + FEC stage; ``wire`` collects what it sends."""

    def __init__(self, config: FecConfig, bound: float = 0.05) -> None:
        self.wire: list[bytes] = []
        self.delivered: list[bytes] = []
        reorder = ReorderBuffer(self.delivered.append, bound=bound)
        self.pipeline = DatagramPipeline(self.wire.append, self.delivered.append,
                                         seq_context=SEQ, reorder=reorder)
        self.stage = FecStage(FecSession(config), FEC, SEQ,
                              lambda d, path: self.pipeline.send_datagram(d, 0.0, path),
                              MAX_DATAGRAM)
        self.pipeline.add_stage(self.stage)


def test_lost_sequenced_packets_are_rebuilt_and_delivered_in_order() -> None:
    tx, rx = _Side(FecConfig(mode="rs", block=8, repairs=2)), _Side(FecConfig(enabled=False))
    rng = random.Random(5)
    sent = 0
    packets = [udp4(3478, i.to_bytes(2, "big") * rng.randrange(10, 500)) for i in range(400)]
    lost = 0
    for i, p in enumerate(packets):
        now = i * 0.001
        tx.pipeline.send_packet(p, now)
        tx.stage.poll(now + 0.0025)  # repairs leave 2 ms after their block
        for d in tx.wire:
            assert d[0] == FEC  # a STUN packet: every datagram is on the FEC context
            sent += 1
            if sent % 7 == 0:  # one in 7: at most 2 of a block's 10 symbols
                lost += 1
                continue
            rx.pipeline.receive_datagram(d, now)
        tx.wire.clear()
    tx.stage.poll(1.0)  # the last block's last repair
    for d in tx.wire:
        rx.pipeline.receive_datagram(d, 1.0)
    rx.pipeline.reorder.expire(10.0)
    assert lost > 10
    assert rx.delivered == packets  # every one, in order
    assert rx.stage.stats().recovered > 0


def test_other_classes_and_contexts_pass_untouched() -> None:
    side = _Side(FecConfig())  # built-in classes: bulk TCP is off
    side.pipeline.send_packet(tcp4(443, b"x" * 100), 0.0)
    assert side.wire[0][0] == SEQ and side.stage.stats().sources == 0
    seen: list[bytes] = []
    side.stage.inbound(b"\x06other", seen.append, 0.0)
    assert seen == [b"\x06other"]


def test_a_datagram_too_big_for_its_repair_goes_plain() -> None:
    side = _Side(FecConfig())
    packet = udp4(3478, bytes(MAX_DATAGRAM - 5 - 28 - REPAIR_GROWTH + 1))
    side.pipeline.send_packet(packet, 0.0)
    assert side.wire[0][0] == SEQ and side.stage.too_big == 1
    side.pipeline.send_packet(udp4(3478, bytes(500)), 0.0)
    assert side.wire[1][0] == FEC
    assert side.stage.stats().too_big == 1  # in the counters (control API, metrics)
    # the tunnel's largest datagram grew (its MTU follows the paths'): now it fits
    side.stage.set_max_datagram(MAX_DATAGRAM + 100)
    side.pipeline.send_packet(packet, 0.0)
    assert side.wire[2][0] == FEC and side.stage.stats().too_big == 1


def test_an_fec_payload_cannot_smuggle_another_context() -> None:
    from tquic.bond.fec import wire

    side = _Side(FecConfig(enabled=False))
    smuggled = wire.encode_source(0, 0, 0, bytes([FEC]) + b"inner")
    side.pipeline.receive_datagram(bytes([FEC]) + smuggled, 0.0)
    other = wire.encode_source(0, 0, 1, b"\x06foreign")
    side.pipeline.receive_datagram(bytes([FEC]) + other, 0.0)
    assert side.delivered == [] and side.pipeline.counters.unknown_context == 0


def test_fec_is_offered_and_accepted_like_seq() -> None:
    offer = ext.parse_offer(ext.encode_offer(ext.KNOWN_EXTENSIONS))
    assert ext.accept(offer, ext.KNOWN_EXTENSIONS) == {"seq": SEQ, "fec": FEC}
    assert ext.accept(offer, {"seq": SEQ}) == {"seq": SEQ}  # a peer without FEC: none


def test_the_bond_config_takes_a_fec_table_and_names_bad_keys() -> None:
    import pytest

    from tquic.bond.config import client_config
    from tquic.bond.links_config import BondConfigError

    base = {"server": "192.0.2.1:4433", "insecure": True, "link": ["192.0.2.10%eth1"]}
    assert client_config(base).fec.enabled is False  # no [fec]: we protect nothing
    cfg = client_config({**base, "fec": {"mode": "rs", "block": 10, "repairs": 3}})
    assert (cfg.fec.enabled, cfg.fec.mode, cfg.fec.repairs) == (True, "rs", 3)
    with pytest.raises(BondConfigError) as err:
        client_config({**base, "fec": {"class": [{"action": "fec", "ports": ["x"]}]}})
    assert err.value.key == "fec.class[0].ports[0]"


def _kinds_by_path(config: FecConfig, paths: list[int], count: int = 64
                   ) -> dict[str, list[int | None]]:
    """Send ``count`` protected packets through a stage whose tunnel has ``paths``;
    -> kind ("source", "repair") -> the path preference of each FEC datagram."""
    sent: list[tuple[bytes, int | None]] = []
    pipeline = DatagramPipeline(lambda d: sent.append((d, None)), lambda p: None,
                                seq_context=SEQ)
    stage = FecStage(FecSession(config), FEC, SEQ, lambda d, path: sent.append((d, path)),
                     MAX_DATAGRAM)
    pipeline.add_stage(stage)
    stage.set_paths(paths)
    for i in range(count):
        pipeline.send_packet(udp4(3478, bytes(300)), i * 0.001)
        stage.poll(i * 0.001)
    stage.poll(10.0)
    kinds: dict[str, list[int | None]] = {"source": [], "repair": []}
    for datagram, path in sent:
        kinds["repair" if datagram[1] >> 6 == 1 else "source"].append(path)
    return kinds


def test_with_two_paths_a_class_keeps_to_one_and_its_repairs_take_the_other() -> None:
    kinds = _kinds_by_path(FecConfig(mode="rs", block=8, repairs=2), [1, 0])
    assert len(kinds["source"]) == 64 and set(kinds["source"]) == {0}
    assert len(kinds["repair"]) == 16 and set(kinds["repair"]) == {1}


def test_an_aggregate_class_leaves_its_sources_to_the_scheduler() -> None:
    from tquic.bond.fec import Action, ClassRule

    config = FecConfig(mode="rs", block=8, repairs=2,
                       classes=(ClassRule("all", Action.FEC_AGGREGATE),))
    kinds = _kinds_by_path(config, [0, 1])
    assert len(kinds["source"]) == 64 and set(kinds["source"]) == {None}
    assert len(kinds["repair"]) == 16 and set(kinds["repair"]) <= {0, 1}


def test_sources_move_to_the_path_that_loses_less_and_stay_there() -> None:
    session = FecSession(FecConfig())
    session.set_paths((0, 1))
    assert session.source_path() == 0  # no feedback yet: the lowest path ID
    policy = session.encoder().policy
    for i in range(200):  # path 0 loses 5 %, path 1 nothing
        policy.observe(0, lost=i % 20 == 0)
        policy.observe(1, lost=False)
    assert session.source_path() == 1
    for _ in range(200):  # path 0 gets better, never clearly better than path 1: stay
        policy.observe(0, lost=False)
    assert session.source_path() == 1
    session.set_paths((0, 2))  # path 1 went away
    assert session.source_path() == 0
    session.set_paths(())
    assert session.source_path() is None


def test_repairs_go_to_the_path_whose_repairs_arrive() -> None:
    from tquic.bond.fec import wire
    from tquic.bond.fec.policy import AdaptiveRepair

    policy = AdaptiveRepair()
    policy.set_paths([0, 1])
    for _ in range(300):  # feedback: repairs on path 0 are lost 10 %, on path 1 never
        policy.observe(0, lost=_ % 10 == 0)
        policy.observe(1, lost=False)
        policy.observe(None, lost=_ % 20 == 0)  # the sources, wherever the scheduler put them
    plan = policy.plan([None] * 16, 16 * 1000, 1002 + wire.REPAIR_HEADER)
    assert plan.m >= 1 and plan.path == 1


def test_with_one_path_nothing_is_pinned() -> None:
    kinds = _kinds_by_path(FecConfig(mode="rs", block=8, repairs=2), [0])
    assert len(kinds["repair"]) == 16 and set(kinds["repair"]) == {None}
    assert set(kinds["source"]) == {None}


def test_the_tunnel_gives_fec_its_validated_non_backup_live_paths() -> None:
    import asyncio
    from types import SimpleNamespace

    from tquic.bond.config import ReorderConfig
    from tquic.bond.session import IpTunnel

    def stat(path_id: int, state: str = "validated", status: str = "available",
             peer_status: str | None = None, suspect: bool = False) -> SimpleNamespace:
        return SimpleNamespace(path_id=path_id, state=state, status=status,
                               peer_status=peer_status, suspect=suspect, srtt=0.02,
                               bytes_received=0)

    async def run() -> tuple[int, ...]:
        tunnel = IpTunnel(SimpleNamespace(), lambda p: None, extensions={"seq": SEQ, "fec": FEC},
                          reorder=ReorderConfig(), router_address=lambda v: None,
                          fec=FecConfig())
        tunnel.adapt([stat(0), stat(1), stat(2, state="validating"), stat(3, status="backup"),
                      stat(4, peer_status="backup"), stat(5, suspect=True), stat(6)])
        tunnel.close()
        assert tunnel.fec is not None
        return tunnel.fec.paths

    assert asyncio.run(run()) == (0, 1, 6)


def test_when_the_tunnel_mtu_grows_larger_packets_of_a_class_are_protected() -> None:
    import asyncio
    from types import SimpleNamespace

    from tquic.bond.config import ReorderConfig
    from tquic.bond.session import TUNNEL_MTU, IpTunnel

    sent: list[bytes] = []
    fake = SimpleNamespace(send_datagram=lambda data, path_id=None: sent.append(data))

    async def run() -> tuple[int, int]:
        tunnel = IpTunnel(fake, lambda p: None,  # type: ignore[arg-type]
                          extensions={"seq": SEQ, "fec": FEC}, reorder=ReorderConfig(),
                          router_address=lambda v: None, fec=FecConfig())
        big = udp4(3478, bytes(1200 - 28))  # 1200 bytes: over 1149 - 14, within 1401 - 14
        assert len(big) + 14 > TUNNEL_MTU
        tunnel.follow_limit(1408, 0.0)  # the paths' DATAGRAM payload: a 1401-byte tunnel MTU
        assert tunnel.mtu == 1401
        tunnel.send_packet(big)
        tunnel.send_packet(udp4(3478, bytes(1401 - 28)))  # full size: its repair cannot fit
        tunnel.close()
        assert tunnel.fec is not None
        return sent[0][0], tunnel.fec.stats().too_big

    first_context, too_big = asyncio.run(run())
    assert first_context == FEC and too_big == 1


def test_a_rebuilt_packet_leaves_the_reorder_buffer_at_once_with_those_behind_it() -> None:
    # the first packet of the second block is lost: the reorder buffer holds the
    # block's others for it (bound 50 ms); the repair rebuilds it, and all go up at
    # that moment, in order -- not when the bound runs out
    tx, rx = _Side(FecConfig(mode="rs", block=4, repairs=1)), _Side(FecConfig(enabled=False))
    packets = [udp4(3478, bytes([0, i]) * 100) for i in range(8)]
    for i, p in enumerate(packets):
        tx.pipeline.send_packet(p, i * 0.001)
        tx.stage.poll(i * 0.001 + 0.0025)
    tx.stage.poll(1.0)
    first, second = tx.wire[:5], tx.wire[5:]  # 4 sources + 1 repair each
    assert len(first) == len(second) == 5
    for d in first:
        rx.pipeline.receive_datagram(d, 0.004)
    assert rx.delivered == packets[:4]
    for d in second[1:4]:
        rx.pipeline.receive_datagram(d, 0.008)
    assert rx.delivered == packets[:4]  # held behind the lost packet 4
    rx.pipeline.receive_datagram(second[4], 0.010)  # its block's repair
    assert rx.delivered == packets  # no expire(): released by the rebuild itself
    assert rx.pipeline.reorder.stats().lost == 0

"""``tquic bond server --workers N`` without root: the pool's slices, the config's
errors, the workers' TUN names and what a worker knows of the others' clients."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from bond_harness import write_certs

from tquic.bond.config import ServerConfig, server_config
from tquic.bond.links_config import BondConfigError
from tquic.bond.pool import AddressPool, PoolExhausted, PoolTooSmall, pool_slices
from tquic.bond.server_worker import Channel, PeerTable, WorkerSpec
from tquic.bond.server_workers import worker_tun_names
from tquic.io.workers import lb_config

pytestmark = pytest.mark.timeout(60)

V4 = ipaddress.ip_network("10.99.0.0/24")
V6 = ipaddress.ip_network("fd99::/64")


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 32])
def test_slices_cover_the_pool_once_and_each_has_its_own_gateway(count: int) -> None:
    slices = pool_slices([V4, V6], count)
    assert [s.index for s in slices] == list(range(count))
    for net in (V4, V6):
        blocks = sorted((b for s in slices for b in s.blocks if b.version == net.version),
                        key=lambda b: int(b.network_address))
        # contiguous, disjoint, from the pool's first address to its last
        assert blocks[0].network_address == net.network_address
        assert blocks[-1].broadcast_address == net.broadcast_address
        for a, b in itertools.pairwise(blocks):
            assert int(a.broadcast_address) + 1 == int(b.network_address)
    for s in slices:
        assert len(s.gateways) == 2
        for gateway in s.gateways:
            assert gateway in s  # each worker's TUN address lies in its own slice
    # slice 0 keeps the single server's address: the pool's first host
    assert slices[0].gateways[0] == ipaddress.ip_network("10.99.0.1/32")
    assert slices[0].gateways[1] == ipaddress.ip_network("fd99::1/128")
    if count == 3:  # boundaries on round numbers: a few routes per slice, not 60
        assert all(len(s.blocks) <= 10 for s in slices)


def test_one_slice_is_the_whole_pool() -> None:
    (only,) = pool_slices([V4], 1)
    assert only.blocks == (V4,)
    plain, sliced = AddressPool([V4]), AddressPool([V4], share=only)
    assert plain.allocate("a") == sliced.allocate("a")


def test_a_worker_allocates_only_from_its_slice_and_gives_its_addresses_back() -> None:
    share = pool_slices([ipaddress.ip_network("10.99.0.0/28")], 2)[1]  # .8-.15
    pool = AddressPool([ipaddress.ip_network("10.99.0.0/28")], share=share)
    assert pool.gateway_interfaces() == [ipaddress.ip_interface("10.99.0.8/32")]
    got = [pool.allocate(f"c{i}")[0] for i in range(6)]  # .9 to .14 (.15 is broadcast)
    assert [str(n) for n in got] == [f"10.99.0.{i}/32" for i in range(9, 15)]
    with pytest.raises(PoolExhausted):
        pool.allocate("one too many")
    pool.release("c2", (got[2],))
    assert pool.allocate("c6") == (got[2],)
    # a reconnecting client gets its address back while it is free
    pool.release("c0", (got[0],))
    assert pool.allocate("c0") == (got[0],)


def test_a_pool_too_small_for_the_workers_is_refused() -> None:
    with pytest.raises(PoolTooSmall, match=r"10\.99\.0\.0/30 has 2 usable addresses: 2 workers"):
        pool_slices([ipaddress.ip_network("10.99.0.0/30")], 2)
    assert len(pool_slices([ipaddress.ip_network("10.99.0.0/29")], 2)) == 2


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_certs(tmp_path_factory.mktemp("workercerts"))


def _config(certs: Path, **values: object) -> ServerConfig:
    base: dict[str, object] = {"cert": str(certs / "cert.pem"), "key": str(certs / "key.pem"),
                               "pool": ["10.99.0.0/24"], "token": "t0ken-for-tests"}
    base.update(values)
    return server_config(base)


def test_workers_is_a_config_key_with_auto(certs: Path) -> None:
    import os

    assert _config(certs).workers == 1
    assert _config(certs, workers=2).workers == 2
    assert _config(certs, workers="3").workers == 3
    auto = _config(certs, workers="auto").workers
    assert 1 <= auto <= 32 and auto == min(32, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(("value", "message"), [
    (0, "--workers takes 1..32 or auto (one process per core), got 0"),
    (33, "got 33"),
    ("many", "got 'many'"),
    (True, "got True"),
])
def test_bad_worker_counts_name_the_flag(certs: Path, value: object, message: str) -> None:
    with pytest.raises(BondConfigError, match="workers") as info:
        _config(certs, workers=value)
    assert info.value.key == "workers"
    assert message in str(info.value)


def test_more_workers_than_the_pool_holds_is_one_line_naming_the_flag(certs: Path) -> None:
    with pytest.raises(BondConfigError) as info:
        _config(certs, pool=["10.99.0.0/29"], workers=3)
    assert info.value.key == "workers"
    assert str(info.value).startswith("workers: --workers 3: pool 10.99.0.0/29 has 6 usable")
    assert "\n" not in str(info.value)
    with pytest.raises(BondConfigError, match="userspace"):
        _config(certs, workers=2, userspace=True)


def test_the_command_line_error_is_one_line(certs: Path) -> None:
    for argv, needle in ((["--workers", "0"], "workers: --workers takes 1..32"),
                         (["--workers", "9", "--pool", "10.99.0.0/29"], "--workers 9: pool")):
        result = subprocess.run(
            [sys.executable, "-m", "tquic", "bond", "server", "--cert", str(certs / "cert.pem"),
             "--key", str(certs / "key.pem"), "--token", "t0ken-for-tests",
             *(["--pool", "10.99.0.0/24"] if "--pool" not in argv else []), *argv,
             "--control", "none"], capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], result.stderr


def test_worker_tun_names_follow_the_flag() -> None:
    assert worker_tun_names("bondsrv0", 3) == ["bondsrv0", "bondsrv1", "bondsrv2"]
    assert worker_tun_names("tqb", 2) == ["tqb0", "tqb1"]
    assert worker_tun_names("srv7", 2) == ["srv7", "srv8"]
    with pytest.raises(BondConfigError, match="tun"):
        worker_tun_names("a-very-long-tun", 2)


def test_a_worker_knows_the_other_workers_clients(certs: Path) -> None:
    config = _config(certs, pool=["10.99.0.0/24", "fd99::/64"], workers=2)

    async def main() -> None:
        a, b = socket.socketpair()
        here, parent = await Channel.open(a), await Channel.open(b)
        spec = WorkerSpec(0, 2, config, "bondsrv0", lb_config(), {})
        peers = PeerTable(here, spec)
        mine = ipaddress.ip_network("10.99.0.2/32")
        theirs = ipaddress.ip_network("10.99.0.130/32")
        site = ipaddress.ip_network("192.168.50.0/24")
        peers.session_up("home", (mine,), ())
        assert await parent.receive() == ("up", "home", (mine,), ())
        peers.update({"home": (0, (mine,), ()), "office": (1, (theirs,), (site,))})
        assert peers.owner(theirs.network_address.packed) == "office"
        assert peers.owner(ipaddress.ip_address("192.168.50.7").packed) == "office"
        # our own client is not "another worker's"; a pool address nobody holds is "";
        # the workers' own TUN addresses and the internet are nobody's client (None)
        assert peers.owner(mine.network_address.packed) == ""
        assert peers.owner(ipaddress.ip_address("10.99.0.200").packed) == ""
        assert peers.owner(ipaddress.ip_address("10.99.0.128").packed) is None
        assert peers.owner(ipaddress.ip_address("fd99::8000:0:0:0").packed) is None
        assert peers.owner(ipaddress.ip_address("192.0.2.1").packed) is None
        peers.session_down("home")
        assert await parent.receive() == ("down", "home")
        here.close()
        assert await parent.receive() is None  # the other end gone: None, no exception
        parent.close()

    asyncio.run(main())


def test_a_client_that_reconnects_to_another_worker_drops_its_old_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reconnect may land on another worker, whose slice gives another address: the
    client's TUN must lose the old one (else the kernel keeps using it as the source and
    the server drops those packets as spoofed).  The kernel calls are recorded."""
    from typing import Any

    from tquic.bond import netlink
    from tquic.bond.client import BondClient
    from tquic.bond.config import client_config

    on_tun: set[str] = set()

    def configure_interface(name: str, mtu: int, addresses: Any, routes: Any) -> None:
        on_tun.update(str(a) for a in addresses)

    def remove_addresses(name: str, addresses: Any) -> None:
        on_tun.difference_update(str(a) for a in addresses)

    monkeypatch.setattr(netlink, "configure_interface", configure_interface)
    monkeypatch.setattr(netlink, "remove_addresses", remove_addresses)

    class Tun:
        name = "tqtest0"

    async def main() -> None:
        config = client_config({"server": "127.0.0.1:4433", "link": ["127.0.0.1"],
                                "token": "t", "insecure": True, "state_dir": str(tmp_path)})
        client = BondClient(config, device=Tun())  # type: ignore[arg-type]
        client._assigned = (ipaddress.ip_network("10.99.0.2/32"),)
        await client._configure_tun()
        assert on_tun == {"10.99.0.2/32"}
        client._assigned = (ipaddress.ip_network("10.99.0.130/32"),)  # worker 1's slice
        await client._configure_tun()
        assert on_tun == {"10.99.0.130/32"}
        assert any("10.99.0.2/32 replaced by 10.99.0.130/32" in line
                   for line in client.status().log)

    asyncio.run(main())

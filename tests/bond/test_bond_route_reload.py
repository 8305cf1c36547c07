"""SIGHUP's route reload follows bring-up's rule (bond/client.py): IPv6 routes only
while the tunnel MTU carries IPv6's 1280 bytes (RFC 9484 §10.2), held back (and said
so) below it, and added when the MTU rises.  The kernel calls are recorded instead of
made: what is asserted is which routes the client asks the TUN to carry."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from tquic.bond import netlink
from tquic.bond.client import BondClient
from tquic.bond.config import ClientConfig, client_config
from tquic.bond.links import LinkManager

pytestmark = pytest.mark.timeout(30)

V4_HALVES = {"0.0.0.0/1", "128.0.0.0/1"}
V6_HALVES = {"::/1", "8000::/1"}


class _Tun:
    name = "tqtest0"


def _config(tmp: Path, routes: list[str]) -> ClientConfig:
    return client_config({"server": "127.0.0.1:4433", "link": ["127.0.0.1"], "token": "t", "insecure": True,
                          "state_dir": str(tmp), "route": routes})


def test_reload_holds_ipv6_routes_below_1280_and_adds_them_when_the_mtu_rises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel: dict[str, set[str]] = {"routes": set()}

    def configure_interface(name: str, mtu: int, addresses: Any, routes: Any) -> None:
        kernel["routes"] |= {str(r) for r in routes}

    def replace_routes(name: str, old: Any, new: Any) -> None:
        kernel["routes"] = (kernel["routes"] - {str(r) for r in old}) | {str(r) for r in new}

    monkeypatch.setattr(netlink, "configure_interface", configure_interface)
    monkeypatch.setattr(netlink, "replace_routes", replace_routes)
    reloaded = _config(tmp_path, ["0.0.0.0/0", "::/0", "192.168.50.0/24"])

    async def main() -> None:
        tun: Any = _Tun()
        client = BondClient(_config(tmp_path, ["0.0.0.0/0"]), device=tun,
                            config_loader=lambda: reloaded)
        client.links = LinkManager(client.config.links, caps=client.caps, policy=client.policy,
                                   family=4, note=client.note)
        # Bring-up on a path that carries less than IPv6 needs (tunnel MTU 1149).
        client._assigned = (ipaddress.ip_network("10.99.0.2/32"),
                            ipaddress.ip_network("fd00:99::2/128"))
        await client._configure_tun()
        assert kernel["routes"] == V4_HALVES
        # SIGHUP adds an IPv4 route and the IPv6 default: only the IPv4 one goes in.
        client.reload()
        assert client._route_task is not None
        await asyncio.wait_for(client._route_task, 10)
        assert kernel["routes"] == V4_HALVES | {"192.168.50.0/24"}
        assert any("::/1" in line and "wait for tunnel mtu 1280" in line
                   for line in client.status().log), client.status().log
        # The paths' DATAGRAM limit rises (PMTUD): the held IPv6 routes follow.
        await client._mtu_changed(1401)
        assert kernel["routes"] == V4_HALVES | {"192.168.50.0/24"} | V6_HALVES
        # A second SIGHUP with the same file changes nothing.
        client._route_task = None
        client.reload()
        assert client._route_task is None

    asyncio.run(main())

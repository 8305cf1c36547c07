"""The tunnel MTU follows the connection's DATAGRAM limit (bond/session.py): raised at
once, lowered only after the smaller limit held for LOWER_AFTER seconds; the
arithmetic of the tunnel overhead (RFC 9484 §10.2's 1280 for IPv6)."""

from __future__ import annotations

import asyncio
from typing import Any

from tquic.bond.config import ReorderConfig
from tquic.bond.session import (
    IPV6_MIN_MTU,
    LOWER_AFTER,
    TUNNEL_MTU,
    IpTunnel,
    max_tunnel_mtu,
    tunnel_mtu_for,
)


class _NullTunnel:
    def send_datagram(self, data: bytes) -> None:
        pass


def _tunnel() -> IpTunnel:
    tunnel: Any = _NullTunnel()
    return IpTunnel(tunnel, lambda _p: None, extensions={}, reorder=ReorderConfig(),
                    router_address=lambda _v: None)


def test_overhead_arithmetic() -> None:
    assert TUNNEL_MTU == 1149  # a 1200-byte QUIC packet
    assert tunnel_mtu_for(1156) == TUNNEL_MTU  # the engine's payload at 1200 bytes
    assert max_tunnel_mtu(1452) == 1401 >= IPV6_MIN_MTU  # the default PMTUD ceiling
    assert max_tunnel_mtu(1331) == 1280  # RFC 9484 §10.2: 51 bytes of overhead + ours


def test_mtu_rises_at_once_and_falls_only_after_the_hold() -> None:
    async def run() -> None:
        tun = _tunnel()
        assert tun.mtu == TUNNEL_MTU
        assert tun.follow_limit(1408, 0.0) and tun.mtu == 1401
        assert not tun.follow_limit(1408, 0.1)
        # A path joined at 1200 bytes: the limit dips; the MTU holds...
        assert not tun.follow_limit(1156, 1.0)
        assert not tun.follow_limit(1156, 1.0 + LOWER_AFTER / 2) and tun.mtu == 1401
        # ...and the dip ends (its PMTUD finished) before the hold: nothing changed.
        assert not tun.follow_limit(1408, 1.0 + LOWER_AFTER * 0.9) and tun.mtu == 1401
        # A lasting fall is followed once it held for LOWER_AFTER.
        assert not tun.follow_limit(1300, 5.0)
        assert tun.follow_limit(1300, 5.0 + LOWER_AFTER) and tun.mtu == 1293
        tun.close()

    asyncio.run(run())

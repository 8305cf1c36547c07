"""Tunnel addresses for clients, from the server's pool (RFC 9484 §4.7.1 ADDRESS_ASSIGN).

The pool's first host address belongs to the server's TUN (the clients' next
hop, and the source of the ICMP errors it sends); every client gets one host
address per pool (IPv4 and/or IPv6) as a full-length prefix (/32, /128), or the
fixed addresses its ``[[client]]`` entry names.  A client that reconnects gets
its previous address back while it is free.  Allocation is bounded by the
pool's size and scans at most ``max_scan`` addresses per call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tquic.h3.connect_ip import IPNetwork


class PoolExhausted(RuntimeError):
    """No free address in the pool."""


class AddressPool:
    def __init__(self, networks: Iterable[IPNetwork], max_scan: int = 65536) -> None:
        self.networks = tuple(networks)
        self._used: dict[IPNetwork, str] = {}
        self._last: dict[str, tuple[IPNetwork, ...]] = {}
        self._max_scan = max_scan
        self.gateways = tuple(_first_host(n) for n in self.networks)
        for gateway in self.gateways:
            self._used[gateway] = "(server)"

    def gateway(self, version: int) -> IPNetwork | None:
        for g in self.gateways:
            if g.version == version:
                return g
        return None

    def gateway_interfaces(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """The server TUN's addresses: gateway address with the pool's prefix length."""
        return [ipaddress.ip_interface(f"{g.network_address}/{n.prefixlen}")
                for g, n in zip(self.gateways, self.networks, strict=True)]

    def allocate(self, client: str, fixed: tuple[IPNetwork, ...] = ()) -> tuple[IPNetwork, ...]:
        """Addresses for ``client`` (its fixed ones, else one free host per pool)."""
        if fixed:
            for net in fixed:
                owner = self._used.get(net)
                if owner is not None and owner != client:
                    raise PoolExhausted(f"{net} is in use by {owner}")
            for net in fixed:
                self._used[net] = client
            return fixed
        out: list[IPNetwork] = []
        previous = self._last.get(client, ())
        for pool in self.networks:
            chosen = next((p for p in previous if p.version == pool.version
                           and p.subnet_of(pool)  # type: ignore[arg-type]
                           and self._used.get(p) in (None, client)), None)
            if chosen is None:
                chosen = self._scan(pool)
            self._used[chosen] = client
            out.append(chosen)
        self._last[client] = tuple(out)
        return tuple(out)

    def _scan(self, pool: IPNetwork) -> IPNetwork:
        full = pool.max_prefixlen
        for i, host in enumerate(pool.hosts() if pool.version == 4 or pool.prefixlen < 127
                                 else iter(pool)):
            if i >= self._max_scan:
                break
            candidate = ipaddress.ip_network(f"{host}/{full}")
            if candidate not in self._used:
                return candidate
        raise PoolExhausted(f"no free address in {pool}")

    def release(self, client: str, addresses: Iterable[IPNetwork]) -> None:
        for net in addresses:
            if self._used.get(net) == client:
                del self._used[net]

    @property
    def in_use(self) -> int:
        return len(self._used) - len(self.gateways)


def _first_host(net: IPNetwork) -> IPNetwork:
    host = next(iter(net.hosts()))
    return ipaddress.ip_network(f"{host}/{net.max_prefixlen}")

"""Tunnel addresses for clients, from the server's pool (RFC 9484 §4.7.1 ADDRESS_ASSIGN).

The pool's first host address belongs to the server's TUN (the clients' next
hop, and the source of the ICMP errors it sends); every client gets one host
address per pool (IPv4 and/or IPv6) as a full-length prefix (/32, /128), or the
fixed addresses its ``[[client]]`` entry names.  A client that reconnects gets
its previous address back while it is free.  Allocation is bounded by the
pool's size and scans at most ``max_scan`` addresses per call.

With ``tquic bond server --workers N`` each worker process allocates from its own
:class:`PoolSlice` (:func:`pool_slices`): slice ``i`` is the ``i``-th of N equal,
contiguous ranges of every pool network, routed to worker ``i``'s TUN as the few
CIDR blocks that cover it; its first usable host is that TUN's own address.
Slice 0 starts with the pool's first host, so one worker is the plain server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tquic.h3.connect_ip import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PoolExhausted(RuntimeError):
    """No free address in the pool."""


class PoolTooSmall(ValueError):
    """The pool cannot be cut into that many slices (each needs a TUN address and a
    client address)."""


@dataclass(frozen=True, slots=True)
class PoolSlice:
    """One worker's share of the pool: ``blocks`` (the CIDRs routed to its TUN) and
    ``gateways`` (its TUN's own address per pool network, as /32 or /128)."""

    index: int
    count: int
    blocks: tuple[IPNetwork, ...]
    gateways: tuple[IPNetwork, ...]

    def __contains__(self, address: IPNetwork) -> bool:
        return any(address.version == b.version and address.subnet_of(b)  # type: ignore[arg-type]
                   for b in self.blocks)


def pool_slices(networks: Iterable[IPNetwork], count: int) -> list[PoolSlice]:
    """``count`` slices of every pool network (raises PoolTooSmall naming the network)."""
    if count < 1:
        raise PoolTooSmall("at least one slice")
    networks = tuple(networks)
    blocks: list[list[IPNetwork]] = [[] for _ in range(count)]
    gateways: list[list[IPNetwork]] = [[] for _ in range(count)]
    for net in networks:
        start, size = int(net.network_address), net.num_addresses
        # Boundaries on multiples of a power of two (1/8 to 1/16 of a slice): a slice
        # is then a handful of CIDR blocks (routes), not one per bit of the prefix.
        unit = max(1, size >> (count.bit_length() + 3))
        bounds = [start + size * i // count // unit * unit for i in range(count)]
        bounds.append(start + size)
        for i in range(count):
            first, last = bounds[i], bounds[i + 1] - 1
            usable = list(_usable(net, first, last, limit=2))
            if len(usable) < 2:
                hosts = net.num_addresses - (2 if net.version == 4 else 1)
                raise PoolTooSmall(f"{net} has {hosts} usable addresses: {count} workers need "
                                   "two each (the worker's TUN and one client) -- fewer "
                                   "workers or a larger pool")
            make = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
            low, high = make(first), make(last)
            blocks[i].extend(ipaddress.summarize_address_range(low, high))
            gateways[i].append(ipaddress.ip_network(f"{usable[0]}/{net.max_prefixlen}"))
    return [PoolSlice(i, count, tuple(blocks[i]), tuple(gateways[i])) for i in range(count)]


def _usable(net: IPNetwork, first: int, last: int, limit: int | None = None
            ) -> Iterator[IPAddress]:
    """Host addresses of ``net`` within [first, last] (no network or broadcast address,
    as ``net.hosts()``), at most ``limit``."""
    low, high = int(net.network_address), int(net.broadcast_address)
    if net.num_addresses > 2:  # /31, /127 and single hosts use every address
        low, high = low + 1, high - (1 if net.version == 4 else 0)
    make = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    top = min(last, high) + 1
    if limit is not None:
        top = min(top, max(first, low) + limit)
    for value in range(max(first, low), top):
        yield make(value)


class AddressPool:
    """``share``: allocate only within this worker's slice of ``networks``."""

    def __init__(self, networks: Iterable[IPNetwork], max_scan: int = 65536,
                 share: PoolSlice | None = None) -> None:
        self.networks = tuple(networks)
        self.share = share
        self._used: dict[IPNetwork, str] = {}
        self._last: dict[str, tuple[IPNetwork, ...]] = {}
        self._max_scan = max_scan
        self.gateways = (share.gateways if share is not None
                         else tuple(_first_host(n) for n in self.networks))
        for gateway in self.gateways:
            self._used[gateway] = "(server)"

    def gateway(self, version: int) -> IPNetwork | None:
        for g in self.gateways:
            if g.version == version:
                return g
        return None

    def gateway_interfaces(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """The server TUN's addresses: gateway address with the pool's prefix length (a
        worker's: its slice's gateway as a host address; its blocks are routes)."""
        if self.share is not None:
            return [ipaddress.ip_interface(str(g)) for g in self.gateways]
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
                           and (self.share is None or p in self.share)
                           and self._used.get(p) in (None, client)), None)
            if chosen is None:
                chosen = self._scan(pool)
            self._used[chosen] = client
            out.append(chosen)
        self._last[client] = tuple(out)
        return tuple(out)

    def _scan(self, pool: IPNetwork) -> IPNetwork:
        full = pool.max_prefixlen
        if self.share is None:
            hosts: Iterable[IPAddress] = _usable(pool, int(pool.network_address),
                                                 int(pool.broadcast_address))
        else:
            hosts = (h for b in self.share.blocks if b.version == pool.version
                     and b.subnet_of(pool)  # type: ignore[arg-type]
                     for h in _usable(pool, int(b.network_address), int(b.broadcast_address)))
        for i, host in enumerate(hosts):
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

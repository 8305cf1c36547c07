"""Where the bond server may connect onward: the TCP lane's target policy.

A CONNECT proxy reachable from the internet must not become an open proxy into
the server's own network (RFC 9114 §4.4 and RFC 9110 §9.3.6: restrict CONNECT to
known ports or safe targets).  By default only *global* unicast addresses are
reachable: loopback, link-local, private (RFC 1918), shared (RFC 6598), ULA
(fc00::/7), multicast, documentation, benchmarking and every other special-
purpose range (Python's ``ipaddress.is_global``) are refused unless an ``allow``
CIDR names them.  ``deny`` CIDRs and ports always win.

Names are resolved by the server and *every* resolved address is checked; the
connection then goes to exactly those checked addresses, never to the name
again, so a name that resolves differently a second time (DNS rebinding)
cannot slip past the check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: embeds an IPv4 address


class PolicyError(ValueError):
    """A policy setting that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def parse_ports(values: Iterable[str | int], field_name: str) -> tuple[PortRange, ...]:
    """``443``, ``"80"``, ``"8000-8100"`` → port ranges; PolicyError naming the field."""
    ranges: list[PortRange] = []
    for value in values:
        text = str(value).strip()
        low_text, sep, high_text = text.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if sep else low
        except ValueError:
            raise PolicyError(f"{field_name}: {value!r} is not a port or a range like 8000-8100") \
                from None
        if not 1 <= low <= high <= 65535:
            raise PolicyError(f"{field_name}: {value!r} is outside 1..65535 (or low > high)")
        ranges.append(PortRange(low, high))
    return tuple(ranges)


def parse_networks(values: Iterable[str], field_name: str) -> tuple[IPNetwork, ...]:
    """CIDRs (``10.0.0.0/8``, ``::1/128``, or a bare address) → networks."""
    networks: list[IPNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise PolicyError(f"{field_name}: {value!r} is not a CIDR such as 10.0.0.0/8 "
                              "or fd00::/8") from None
    return tuple(networks)


def _effective(ip: IPAddress) -> IPAddress:
    """The address a connection really reaches: IPv4-mapped and NAT64 IPv6
    addresses are judged by the IPv4 address they carry."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _special_kind(ip: IPAddress) -> str | None:
    """Why an address is not plain global unicast, or None if it is."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.IPv6Network("fc00::/7"):
        return "unique-local (ULA)"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "special-purpose"
    return None


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which targets the server connects to.

    ``allow``: networks reachable even though they are special-purpose (e.g.
    ``192.168.1.0/24`` for a VPS's own private LAN, ``127.0.0.1/32`` in tests).
    ``deny``: networks never reachable (checked first).  ``allow_global``: with
    False, only ``allow`` networks are reachable.  ``ports``: the only ports
    allowed (empty: all); ``deny_ports``: never allowed.  Timeouts in seconds.
    """

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()
    ports: tuple[PortRange, ...] = ()
    deny_ports: tuple[PortRange, ...] = ()
    allow_global: bool = True
    connect_timeout: float = 10.0
    resolve_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "resolve_timeout"):
            value = getattr(self, name)
            if not 0 < value <= 300:
                raise PolicyError(f"{name}: {value} is outside 0..300 seconds")

    @classmethod
    def build(cls, *, allow: Iterable[str] = (), deny: Iterable[str] = (),
              ports: Iterable[str | int] = (), deny_ports: Iterable[str | int] = (),
              allow_global: bool = True, connect_timeout: float = 10.0,
              resolve_timeout: float = 5.0) -> TargetPolicy:
        """A policy from config-file style values; PolicyError names the bad field."""
        return cls(parse_networks(allow, "allow"), parse_networks(deny, "deny"),
                   parse_ports(ports, "ports"), parse_ports(deny_ports, "deny_ports"),
                   allow_global, connect_timeout, resolve_timeout)

    def port_refusal(self, port: int) -> str | None:
        if not 1 <= port <= 65535:
            return f"port {port} is not a TCP/UDP port"
        if any(port in r for r in self.deny_ports):
            return f"port {port} is denied by policy"
        if self.ports and not any(port in r for r in self.ports):
            allowed = ",".join(str(r) for r in self.ports)
            return f"port {port} is not among the allowed ports ({allowed})"
        return None

    def address_refusal(self, ip: IPAddress) -> str | None:
        """None when ``ip`` may be reached, else why not (one line)."""
        target = _effective(ip)
        for candidate in {ip, target}:
            for network in self.deny:
                if candidate.version == network.version and candidate in network:
                    return f"{ip} is in denied network {network}"
        for candidate in {ip, target}:
            for network in self.allow:
                if candidate.version == network.version and candidate in network:
                    return None
        kind = _special_kind(target)
        if kind is not None:
            return f"{ip} is a {kind} address (add it to allow to reach it)"
        if not self.allow_global:
            return f"{ip} is not in an allowed network"
        return None

    def refusal(self, ip: IPAddress, port: int) -> str | None:
        return self.port_refusal(port) or self.address_refusal(ip)

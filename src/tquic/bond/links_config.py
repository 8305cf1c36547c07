"""One link of a bond client, as configured: where it is, its role, weight, cap and cut-offs.

A link is written ``ADDR[%IFACE][,key=value…]`` on the command line (``--link``)
or as a string or a table in the config file's ``link`` list:

    --link 192.0.2.10%wwan0,role=backup,cap=10GB/month
    link = ["192.0.2.10%wwan0,role=backup", {interface = "eth1", weight = 3}]

``%IFACE`` alone (no address) takes the interface's address, whatever DHCP
gives it, and follows it as it changes.  Every error is a
:class:`BondConfigError` naming the key and what to write.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any

ROLES = ("primary", "backup", "never")
PERIODS = ("day", "week", "month")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
_CAP = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*/\s*([a-z]+)\s*$")
_IFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")  # IFNAMSIZ - 1


class BondConfigError(ValueError):
    """A bad setting: ``key`` names it (as in the config file), the message says what to write."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class DataCap:
    """At most ``limit`` bytes per calendar ``period`` (UTC day, ISO week, month)."""

    limit: int
    period: str

    def __str__(self) -> str:
        return f"{self.limit}B/{self.period}"


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """One WAN link."""

    name: str
    address: str | None  # None: the interface's own address (followed through netlink)
    interface: str | None
    role: str = "primary"
    weight: float = 1.0
    cap: DataCap | None = None
    max_rtt: float | None = None  # seconds; beyond it the link is demoted until it recovers
    max_loss: float | None = None  # fraction 0..1 of packets lost

    @property
    def spec(self) -> str:
        """``ADDR%IFACE`` (or ``%IFACE``) as the user wrote the place of the link."""
        if self.interface is None:
            return self.address or "?"
        return f"{self.address or ''}%{self.interface}"


def parse_cap(value: str, key: str = "cap") -> DataCap:
    """``10GB/month``, ``500MiB/day``, ``2TB/week`` → DataCap (SI units are powers of 10)."""
    match = _CAP.match(value)
    if match is None:
        raise BondConfigError(key, f"{value!r} is not a cap; write e.g. 10GB/month, 500MB/day")
    number, unit, period = match.groups()
    scale = _UNITS.get(unit.upper())
    if scale is None:
        raise BondConfigError(key, f"unit {unit!r}; use B, KB, MB, GB, TB (or KiB, MiB, GiB, TiB)")
    if period not in PERIODS:
        raise BondConfigError(key, f"period {period!r}; use day, week or month")
    limit = int(float(number) * scale)
    if limit <= 0:
        raise BondConfigError(key, "a cap must be more than 0 bytes")
    return DataCap(limit, period)


def _parse_duration(value: object, key: str) -> float:
    """Seconds from a number (seconds) or a string ``150ms`` / ``2s``."""
    if isinstance(value, bool):
        raise BondConfigError(key, "write a duration such as 300ms or 1.5s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.endswith("ms"):
                seconds = float(text[:-2]) / 1000
            elif text.endswith("s"):
                seconds = float(text[:-1])
            else:
                seconds = float(text)
        except ValueError:
            raise BondConfigError(key, f"{value!r}: write a duration such as 300ms or 1.5s") from None
    else:
        raise BondConfigError(key, "write a duration such as 300ms or 1.5s")
    if not (math.isfinite(seconds) and seconds > 0):
        raise BondConfigError(key, f"{value!r}: must be more than 0")
    return seconds


def _parse_fraction(value: object, key: str) -> float:
    """A loss fraction from ``0.05`` or ``5%``."""
    try:
        if isinstance(value, str) and value.strip().endswith("%"):
            fraction = float(value.strip()[:-1]) / 100
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            fraction = float(value)
        else:
            raise ValueError
    except ValueError:
        raise BondConfigError(key, f"{value!r}: write a fraction such as 0.05 or 5%") from None
    if not 0 < fraction < 1:
        raise BondConfigError(key, f"{value!r}: must be between 0 and 1 (0%..100%)")
    return fraction


def _parse_place(text: str, key: str) -> tuple[str | None, str | None]:
    host, sep, device = text.strip().partition("%")
    host = host.strip("[]")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise BondConfigError(key, f"{text!r}: write ADDR, ADDR%IFACE or %IFACE "
                                       "(ADDR an IP address, e.g. 192.0.2.10%eth1)") from None
    if sep and not device:
        raise BondConfigError(key, f"{text!r}: an interface name must follow '%'")
    if device and not _IFACE.match(device):
        raise BondConfigError(key, f"{device!r} is not an interface name (1-15 characters)")
    if not host and not device:
        raise BondConfigError(key, "a link needs an address, an interface, or both")
    return host or None, device or None


_LINK_KEYS = ("name", "address", "interface", "role", "weight", "cap", "max_rtt", "max_loss")


def link_from_table(table: dict[str, Any], key: str) -> LinkConfig:
    """A link from a config table (keys as :data:`_LINK_KEYS`)."""
    unknown = sorted(set(table) - set(_LINK_KEYS))
    if unknown:
        raise BondConfigError(f"{key}.{unknown[0]}", f"unknown key; a link takes "
                                                    f"{', '.join(_LINK_KEYS)}")
    address = table.get("address")
    interface = table.get("interface")
    if address is not None and not isinstance(address, str):
        raise BondConfigError(f"{key}.address", "write an IP address as a string")
    if interface is not None and not isinstance(interface, str):
        raise BondConfigError(f"{key}.interface", "write an interface name as a string")
    place = f"{address or ''}{'%' + interface if interface else ''}"
    address, interface = _parse_place(place, key)
    role = table.get("role", "primary")
    if role not in ROLES:
        raise BondConfigError(f"{key}.role", f"{role!r}; write primary, backup or never")
    weight_value = table.get("weight", 1.0)
    try:
        if isinstance(weight_value, bool):
            raise ValueError
        weight = float(weight_value)
    except (TypeError, ValueError):
        raise BondConfigError(f"{key}.weight", f"{weight_value!r}: write a number > 0") from None
    if not (math.isfinite(weight) and 0 < weight <= 1000):
        raise BondConfigError(f"{key}.weight", f"{weight_value!r}: write a number in (0, 1000]")
    cap_value = table.get("cap")
    cap = None
    if cap_value is not None:
        if not isinstance(cap_value, str):
            raise BondConfigError(f"{key}.cap", "write a cap such as \"10GB/month\"")
        cap = parse_cap(cap_value, f"{key}.cap")
    max_rtt = None if table.get("max_rtt") is None else _parse_duration(table["max_rtt"],
                                                                       f"{key}.max_rtt")
    max_loss = None if table.get("max_loss") is None else _parse_fraction(table["max_loss"],
                                                                         f"{key}.max_loss")
    name = table.get("name") or interface or address or "link"
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.:%@-]{1,64}$", name):
        raise BondConfigError(f"{key}.name", f"{name!r}: 1-64 letters, digits, _ . : - @")
    return LinkConfig(name, address, interface, role, weight, cap, max_rtt, max_loss)


def parse_link(value: str | dict[str, Any], key: str = "link") -> LinkConfig:
    """``ADDR[%IFACE][,role=…,weight=…,cap=…,max_rtt=…,max_loss=…,name=…]`` or a table."""
    if isinstance(value, dict):
        return link_from_table(value, key)
    if not isinstance(value, str):
        raise BondConfigError(key, "write \"ADDR%IFACE,role=primary\" or a table")
    place, *options = value.split(",")
    address, interface = _parse_place(place, key)
    table: dict[str, Any] = {"address": address, "interface": interface}
    for option in options:
        name, sep, option_value = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise BondConfigError(key, f"{option!r}: options are key=value "
                                       "(role, weight, cap, max_rtt, max_loss, name)")
        if name in ("address", "interface") or name not in _LINK_KEYS:
            raise BondConfigError(f"{key}.{name}", "unknown option; use role, weight, cap, "
                                                   "max_rtt, max_loss or name")
        table[name] = option_value.strip()
    return link_from_table(table, key)


def check_links(links: tuple[LinkConfig, ...], key: str = "link") -> None:
    """At least one link that may carry traffic; names unique."""
    if not links:
        raise BondConfigError(key, "give at least one link: --link ADDR%IFACE (or link = [...])")
    if all(link.role == "never" for link in links):
        raise BondConfigError(key, "every link has role=never; make one primary or backup")
    seen: set[str] = set()
    for i, link in enumerate(links):
        if link.name in seen:
            raise BondConfigError(f"{key}[{i}].name", f"{link.name!r} is used twice; "
                                                      "give each link its own name=")
        seen.add(link.name)

"""The nftables rule that sends a LAN's TCP to the redirect listener.

One table of our own per rule (``inet tquic_lane_<port>``), so installing is
one atomic ``nft -f`` transaction and removing is deleting the table — never
touching anyone else's rules::

    table inet tquic_lane_12345 {
        chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            iifname "lan0" fib daddr type local return     # the router's own services
            iifname "lan0" ip daddr 192.0.2.0/24 return    # exclude=...
            iifname "lan0" meta l4proto tcp redirect to :12345
        }
    }

Only TCP arriving on the LAN interface is redirected (prerouting never sees
the router's own connections, so the bond's traffic cannot loop).  Needs
CAP_NET_ADMIN; errors come back as :class:`NftError` with nft's message.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass

_IFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_TIMEOUT = 10.0


class NftError(RuntimeError):
    """nft failed (missing, not permitted, or rejected the rule); the message says which."""


@dataclass(frozen=True, slots=True)
class RedirectRule:
    """Redirect TCP arriving on ``interface`` to local ``port``, except ``exclude`` CIDRs."""

    interface: str
    port: int
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _IFACE.match(self.interface):
            raise ValueError(f"redirect interface {self.interface!r} is not an interface name")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"redirect port {self.port} is outside 1..65535")
        for cidr in self.exclude:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names it

    @property
    def table(self) -> str:
        return f"tquic_lane_{self.port}"

    def ruleset(self) -> str:
        """The nft script that installs the rule (the table is created fresh)."""
        iface = f'iifname "{self.interface}"'
        lines = [f"table inet {self.table} {{", "  chain prerouting {",
                 "    type nat hook prerouting priority dstnat; policy accept;",
                 f"    {iface} fib daddr type local return"]
        for cidr in self.exclude:
            network = ipaddress.ip_network(cidr, strict=False)
            family = "ip" if network.version == 4 else "ip6"
            lines.append(f"    {iface} {family} daddr {network} return")
        lines += [f"    {iface} meta l4proto tcp redirect to :{self.port}", "  }", "}"]
        return "\n".join(lines) + "\n"


def _nft(args: list[str], script: str | None = None, *, check: bool = True) -> str:
    binary = shutil.which("nft")
    if binary is None:
        raise NftError("nft is not installed (apt-get install nftables)")
    try:
        result = subprocess.run([binary, *args], input=script, capture_output=True, text=True,
                                timeout=_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise NftError(f"nft {' '.join(args)} did not finish in {_TIMEOUT:g} s") from None
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        hint = " (needs root / CAP_NET_ADMIN)" if "ermission" in result.stderr else ""
        raise NftError(f"nft {' '.join(args)}: {message[0] if message else 'failed'}{hint}")
    return result.stdout


def install(rule: RedirectRule) -> None:
    """Install (or replace) the rule's table in one transaction."""
    remove(rule)
    _nft(["-f", "-"], rule.ruleset())
    atexit.register(_remove_quietly, rule)  # also on an exit that skips our own cleanup


def remove(rule: RedirectRule) -> None:
    """Delete the rule's table (nothing if it is not there)."""
    _nft(["delete", "table", "inet", rule.table], check=False)
    atexit.unregister(_remove_quietly)


def _remove_quietly(rule: RedirectRule) -> None:
    with contextlib.suppress(NftError):
        _nft(["delete", "table", "inet", rule.table], check=False)


def installed(rule: RedirectRule) -> bool:
    return bool(_nft(["list", "table", "inet", rule.table], check=False).strip())

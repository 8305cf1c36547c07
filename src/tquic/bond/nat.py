"""``--nat``: an nftables masquerade for the pool, installed at start and removed at exit.

The rules live in a table of their own (``inet tquic_bond_<TUN>``), so removing
them is deleting that table: nothing else in the ruleset is touched, and a
table left by a killed daemon is replaced at the next start.  IP forwarding
(``/proc/sys/net/ipv{4,6}/…forwarding``) is switched on while the server runs
and put back as it was.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tquic.h3.connect_ip import IPNetwork

logger = logging.getLogger("tquic.bond")

_FORWARDING = {4: Path("/proc/sys/net/ipv4/ip_forward"),
               6: Path("/proc/sys/net/ipv6/conf/all/forwarding")}


class NatError(RuntimeError):
    """nft is missing or refused the rules; the message has its answer."""


def table_name(tun: str) -> str:
    return "tquic_bond_" + "".join(c if c.isalnum() else "_" for c in tun)


def _nft(script: str) -> None:
    nft = shutil.which("nft")
    if nft is None:
        raise NatError("--nat needs nftables: install the 'nftables' package (nft)")
    result = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True,
                            timeout=10, check=False)
    if result.returncode != 0:
        raise NatError(f"nft refused the rules: {result.stderr.strip()}")


def install(tun: str, pool: Sequence[IPNetwork], interfaces: Sequence[str] = ()) -> str:
    """Masquerade what leaves from the pool through any interface but the TUN (but the
    ``interfaces``, when given: the TUNs of a server's workers)."""
    table = table_name(tun)
    names = list(interfaces) or [tun]
    tuns = f'"{names[0]}"' if len(names) == 1 else "{ " + ", ".join(f'"{n}"' for n in names) + " }"
    rules = []
    for net in pool:
        family = "ip" if net.version == 4 else "ip6"
        rules.append(f'    {family} saddr {net} oifname != {tuns} masquerade')
    script = (f"table inet {table}\ndelete table inet {table}\n"
              f"table inet {table} {{\n  chain postrouting {{\n"
              f"    type nat hook postrouting priority srcnat; policy accept;\n"
              + "\n".join(rules) + "\n  }\n}\n")
    _nft(script)
    logger.info("nat: masquerading %s (nftables table inet %s)",
                ", ".join(str(n) for n in pool), table)
    return table


def remove(tun: str) -> None:
    table = table_name(tun)
    try:
        _nft(f"table inet {table}\ndelete table inet {table}\n")
    except NatError as exc:
        logger.warning("nat: could not remove table %s: %s", table, exc)


def enable_forwarding(versions: Sequence[int]) -> dict[int, str]:
    """Switch forwarding on; returns the previous values to restore."""
    previous: dict[int, str] = {}
    for version in sorted(set(versions)):
        path = _FORWARDING[version]
        try:
            previous[version] = path.read_text().strip()
            path.write_text("1\n")
        except OSError as exc:
            logger.warning("cannot enable IPv%d forwarding (%s); the server will only "
                           "reach its own addresses", version, exc.strerror)
    return previous


def restore_forwarding(previous: dict[int, str]) -> None:
    for version, value in previous.items():
        with contextlib.suppress(OSError):
            _FORWARDING[version].write_text(value + "\n")

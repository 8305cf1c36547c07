"""``tquic netem``: a real-time UDP link emulator built on tquic.sim's link model.

    from tquic.netem import LinkTable, NetemThread, parse_link_option
    addr, rule = parse_link_option("127.0.0.2=rate=50mbit,delay=10ms,loss=0.5%")
    with NetemThread(("127.0.0.1", 4433), ("127.0.0.1", 4434),
                     LinkTable().with_rule(addr, rule)) as relay:
        ...
"""

from tquic.netem.clock import Lateness, RealtimeClock
from tquic.netem.relay import FlowStats, NetemRelay, NetemThread, format_stats
from tquic.netem.spec import (
    PROFILE_HELP,
    LinkRule,
    LinkTable,
    NetemConfigError,
    parse_address,
    parse_link_option,
    parse_profile,
    table_from_toml,
)

__all__ = [
    "PROFILE_HELP",
    "FlowStats",
    "Lateness",
    "LinkRule",
    "LinkTable",
    "NetemConfigError",
    "NetemRelay",
    "NetemThread",
    "RealtimeClock",
    "format_stats",
    "parse_address",
    "parse_link_option",
    "parse_profile",
    "table_from_toml",
]

"""The ``[fec]`` table of the bond's TOML, validated into a frozen FecConfig.

    [fec]
    mode = "adaptive"        # adaptive | xor | rs
    block = 32               # most sources per block (k)
    repairs = 4              # repairs per block for mode = "rs" (xor: always 1)
    max_delay_ms = 25        # a block closes this long after its first source
    max_overhead = 0.25      # adaptive: repair + header bytes <= this share of the sources
    target_loss = 0.001      # adaptive: residual loss to aim for
    off_below = 0.002        # adaptive: no repairs while measured loss is below this
    repair_spacing_ms = 2    # repairs leave this long after their block closes (never in
                             # the QUIC packet of its last source)
    hold_ms = 200            # receiver: how long a block waits for its repairs
    default = "off"          # action for packets no class matches
    builtin_classes = true   # append the built-in classes (below) after yours

    [[fec.class]]
    name = "game"
    action = "fec"           # off | fec | redundant | fec+aggregate
    protocol = "udp"         # udp | tcp | icmp | a protocol number
    ports = ["27000-27050", 3074]   # source or destination port
    dscp = ["EF", 34]        # names (EF, AF41, CS5, VA, ...) or numbers 0-63
    destinations = ["10.20.0.0/16", "2001:db8::/32"]
    max_overhead = 1.0       # this class's own adaptive ceiling (default: fec.max_overhead)

Each error names the key (``fec.class[2].ports[0]``), what was given and what
is allowed.  ``FecConfig.from_toml(doc.get("fec", {}))`` is the entry point.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tquic.bond.fec.classify import PROTO_TCP, PROTO_UDP, Action, Classifier, ClassRule
from tquic.bond.fec.codes import MAX_SYMBOLS

MODES = ("adaptive", "xor", "rs")
PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": 1, "ipv6-icmp": 58}
DSCP_NAMES = {"EF": 46, "VA": 44, "DF": 0, "BE": 0, "LE": 1,
              **{f"CS{i}": 8 * i for i in range(8)},
              **{f"AF{c}{d}": 8 * c + 2 * d for c in range(1, 5) for d in range(1, 4)}}

BUILTIN_CLASSES = (
    ClassRule("voice-ef", Action.FEC, dscp=frozenset({46}), max_overhead=1.0),
    ClassRule("stun-turn", Action.FEC, protocol=PROTO_UDP, ports=((3478, 3481),)),
    ClassRule("rtp", Action.FEC, protocol=PROTO_UDP, ports=((16384, 32767),)),
    ClassRule("bulk-tcp", Action.OFF, protocol=PROTO_TCP),
)
"""Calls (DSCP EF, STUN/TURN 3478-3481, the usual RTP port range) get FEC; bulk TCP
gets none (its own retransmission repairs it, repairs would only cost it rate).
Voice marked EF (RFC 4594, RFC 8837 for WebRTC audio) may spend up to 100 %: at
50 packets/s only blocks of 1-2 packets keep the added delay under ~30 ms, and a
repair per 2 packets is 50 %; 80 kbit/s doubled is still small."""

_TOP_KEYS = {"mode", "block", "repairs", "max_delay_ms", "max_overhead", "target_loss",
             "off_below", "hold_ms", "default", "builtin_classes", "class", "enabled",
             "repair_spacing_ms"}
_CLASS_KEYS = {"name", "action", "protocol", "ports", "dscp", "destinations", "max_overhead"}


class FecConfigError(ValueError):
    """A ``[fec]`` key is wrong; the message names it and says what to write."""


def _fail(key: str, why: str) -> FecConfigError:
    return FecConfigError(f"{key}: {why}")


@dataclass(frozen=True, slots=True)
class FecConfig:
    """Validated FEC settings (see the module docstring for each key)."""

    enabled: bool = True
    mode: str = "adaptive"
    block: int = 32
    repairs: int = 4
    max_delay: float = 0.025
    max_overhead: float = 0.25
    target_loss: float = 0.001
    off_below: float = 0.002
    hold: float = 0.2
    repair_spacing: float = 0.002
    default: Action = Action.OFF
    classes: tuple[ClassRule, ...] = field(default=BUILTIN_CLASSES)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise _fail("fec.mode", f"must be one of {', '.join(MODES)}; got {self.mode!r}")
        if not 1 <= self.block < MAX_SYMBOLS:
            raise _fail("fec.block", f"must be 1..{MAX_SYMBOLS - 1} sources; got {self.block}")
        if self.repairs < 1 or self.block + self.repairs > MAX_SYMBOLS:
            raise _fail("fec.repairs", f"must be >= 1 with block + repairs <= {MAX_SYMBOLS}; "
                        f"got {self.repairs}")
        _range("fec.max_delay_ms", self.max_delay * 1000, 1.0, 1000.0)
        _range("fec.max_overhead", self.max_overhead, 0.0, 4.0)
        _range("fec.target_loss", self.target_loss, 0.0, 0.5)
        _range("fec.off_below", self.off_below, 0.0, 0.5)
        _range("fec.hold_ms", self.hold * 1000, 1.0, 10_000.0)
        if self.hold <= self.max_delay:
            # a block is given up hold_ms after its first symbol: its repairs, max_delay
            # later at most, must still find it
            raise _fail("fec.hold_ms", f"must exceed max_delay_ms ({self.max_delay * 1000:g}); "
                        f"got {self.hold * 1000:g}")
        _range("fec.repair_spacing_ms", self.repair_spacing * 1000, 0.0, self.max_delay * 1000)

    def classifier(self) -> Classifier:
        return Classifier(self.classes, self.default)

    @classmethod
    def from_toml(cls, table: Mapping[str, Any]) -> FecConfig:
        """Build from the parsed ``[fec]`` table (``tomllib.loads(text)["fec"]``)."""
        if not isinstance(table, Mapping):
            raise _fail("fec", f"must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - _TOP_KEYS)
        if unknown:
            raise _fail(f"fec.{unknown[0]}", f"unknown key; known keys: {', '.join(sorted(_TOP_KEYS))}")
        classes_raw = table.get("class", [])
        if not isinstance(classes_raw, list):
            raise _fail("fec.class", "must be an array of tables: write [[fec.class]] sections")
        classes = tuple(_rule(f"fec.class[{i}]", c) for i, c in enumerate(classes_raw))
        if _get(table, "builtin_classes", bool, True):
            classes += BUILTIN_CLASSES
        return cls(
            enabled=_get(table, "enabled", bool, True),
            mode=_get(table, "mode", str, "adaptive"),
            block=_get(table, "block", int, 32),
            repairs=_get(table, "repairs", int, 4),
            max_delay=_number(table, "max_delay_ms", 25.0) / 1000,
            max_overhead=_number(table, "max_overhead", 0.25),
            target_loss=_number(table, "target_loss", 0.001),
            off_below=_number(table, "off_below", 0.002),
            hold=_number(table, "hold_ms", 200.0) / 1000,
            repair_spacing=_number(table, "repair_spacing_ms", 2.0) / 1000,
            default=_action("fec.default", table.get("default", "off")),
            classes=classes,
        )


def _range(key: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise _fail(key, f"must be in [{lo:g}, {hi:g}]; got {value:g}")


def _get(table: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    # bool is an int in Python: a count given as true/false is a mistake
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(f"fec.{key}", f"must be a {kind.__name__}; got {value!r}")
    return value


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"fec.{key}", f"must be a number; got {value!r}")
    return float(value)


def _action(key: str, value: object) -> Action:
    try:
        return Action(value)
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        raise _fail(key, f"must be one of {choices}; got {value!r}") from None


def _rule(key: str, raw: object) -> ClassRule:
    if not isinstance(raw, Mapping):
        raise _fail(key, "must be a table with name, action and match keys")
    unknown = sorted(set(raw) - _CLASS_KEYS)
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", f"unknown key; known keys: {', '.join(sorted(_CLASS_KEYS))}")
    name = raw.get("name", key)
    if not isinstance(name, str) or not name:
        raise _fail(f"{key}.name", f"must be a non-empty string; got {name!r}")
    if "action" not in raw:
        raise _fail(f"{key}.action", "missing; write action = \"fec\" (or off, redundant, fec+aggregate)")
    action = _action(f"{key}.action", raw["action"])
    protocol = None
    if "protocol" in raw:
        p = raw["protocol"]
        if isinstance(p, str) and p.lower() in PROTOCOLS:
            protocol = PROTOCOLS[p.lower()]
        elif isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 255:
            protocol = p
        else:
            raise _fail(f"{key}.protocol", f"must be {', '.join(PROTOCOLS)} or 0-255; got {p!r}")
    ports = tuple(_port_range(f"{key}.ports[{i}]", v)
                  for i, v in enumerate(_list(f"{key}.ports", raw.get("ports", []))))
    if ports and protocol not in (PROTO_TCP, PROTO_UDP, None):
        raise _fail(f"{key}.ports", "ports need protocol = \"udp\" or \"tcp\" (or none)")
    dscp = frozenset(_dscp(f"{key}.dscp[{i}]", v)
                     for i, v in enumerate(_list(f"{key}.dscp", raw.get("dscp", []))))
    nets = []
    for i, v in enumerate(_list(f"{key}.destinations", raw.get("destinations", []))):
        try:
            nets.append(ipaddress.ip_network(v, strict=False))
        except (ValueError, TypeError):
            raise _fail(f"{key}.destinations[{i}]",
                        f"must be a network like \"10.0.0.0/8\" or \"2001:db8::/32\"; got {v!r}") from None
    ceiling = None
    if "max_overhead" in raw:
        ceiling = raw["max_overhead"]
        if isinstance(ceiling, bool) or not isinstance(ceiling, int | float):
            raise _fail(f"{key}.max_overhead", f"must be a number; got {ceiling!r}")
        _range(f"{key}.max_overhead", float(ceiling), 0.0, 4.0)
        ceiling = float(ceiling)
    return ClassRule(name, action, dscp, protocol, ports, tuple(nets), ceiling)


def _list(key: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(key, f"must be an array, e.g. [...]; got {value!r}")
    return value


def _port_range(key: str, value: object) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        lo = hi = value
    elif isinstance(value, str) and value.replace("-", "", 1).isdigit():
        a, _, b = value.partition("-")
        lo, hi = int(a), int(b or a)
    else:
        raise _fail(key, f"must be a port (5060) or a range (\"3478-3481\"); got {value!r}")
    if not 0 <= lo <= hi <= 65535:
        raise _fail(key, f"must be 0-65535 with low <= high; got {value!r}")
    return lo, hi


def _dscp(key: str, value: object) -> int:
    if isinstance(value, str) and value.upper() in DSCP_NAMES:
        return DSCP_NAMES[value.upper()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 63:
        return value
    raise _fail(key, f"must be 0-63 or a name ({', '.join(sorted(DSCP_NAMES))}); got {value!r}")

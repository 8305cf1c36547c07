"""Link profiles for ``tquic netem`` from strings and TOML, as ``tquic.sim`` LinkProfiles.

A profile string is comma-separated ``key=value`` pairs; a key applies to both
directions unless written ``up.key`` (client → target) or ``down.key``
(target → client):

    rate=50mbit,delay=10ms,jitter=2ms,loss=0.5%,up.rate=10mbit,outage=5s-7s

Every value is checked when parsed; a bad one raises :class:`NetemConfigError`
whose message names the key, what was given and what to write instead.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tquic.paths.network_path import Address
from tquic.sim.profile import ECN_MODES, GilbertElliott, LinkProfile, Outage, ProfileError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_OUTAGES",
    "PROFILE_HELP",
    "LinkRule",
    "LinkTable",
    "NetemConfigError",
    "parse_address",
    "parse_link_option",
    "parse_profile",
    "table_from_toml",
]

# Datagrams one direction of a link may hold (queued + in the delay line), like
# tc-netem's "limit"; beyond it datagrams are dropped.
DEFAULT_LIMIT = 10_000
# Outage windows per direction (each datagram checks them all).
MAX_OUTAGES = 1000
# tc-netem's default queue: a rate-limited link without a queue= gets this many packets.
DEFAULT_QUEUE_PACKETS = 1000


class NetemConfigError(ValueError):
    """A profile, address or configuration file is wrong; the message says how to fix it."""


PROFILE_HELP = """\
profile keys (comma-separated key=value; prefix with up. or down. for one direction):
  rate=50mbit        bottleneck rate: bit, kbit, mbit, gbit (bits per second)
  delay=10ms         one-way delay: us, ms, s (a bare number is seconds)
  jitter=2ms         delay varies uniformly by +-jitter (order kept)
  loss=0.5%          random loss (percent, or a fraction like 0.005)
  burst=1%:30%       bursty (Gilbert-Elliott) loss: P(good->bad):P(bad->good)
                     [:loss in bad[:loss in good]], added to loss=
  reorder=1%:5ms     that share of datagrams held back 5ms (overtaken by later ones)
  corrupt=0.1%       flip one bit in that share of datagrams
  queue=100          bottleneck queue in packets, or bytes with a unit: 64kB, 1MB
                     (default 1000 packets when rate= is set)
  limit=10000        datagrams one direction may hold in total (queue + delay line)
  outage=5s-7s       link down from 5 s to 7 s after netem starts; repeat the key for
                     more windows; 30s- means down for good from 30 s
  flap=20s:2s        periodic outages: up 20 s, down 2 s, repeated (first hour, or
                     flap=20s:2s:600s for the first 600 s)
  overhead=28        bytes per datagram the rate also carries (IPv4+UDP = 28)
  ecn=classic        the queue CE-marks ECN-capable datagrams beyond 5 ms instead of
                     dropping them; ecn=l4s also marks ECT(1) beyond 1 ms; ecn=bleach
                     clears the ECN field (marks are forwarded as they are otherwise)
"""

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_RATE_UNITS = {"": 1.0, "bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1_000_000, "kib": 1024, "mib": 1 << 20}
_KEYS = ("rate", "delay", "jitter", "loss", "burst", "reorder", "corrupt", "queue", "limit",
         "outage", "flap", "overhead", "ecn")


def _fail(key: str, value: str, want: str) -> NetemConfigError:
    return NetemConfigError(f"{key}={value!r}: {want}")


def parse_rate(key: str, value: str) -> float:
    m = re.fullmatch(_NUMBER + r"\s*([a-z]*)", value.strip().lower())
    if m is None or m.group(2) not in _RATE_UNITS:
        hint = ""
        if m is not None and m.group(2).endswith(("bps", "b/s")):
            hint = " ('bps' is ambiguous; for 50 megabits per second write 50mbit)"
        raise _fail(key, value, "write a bit rate like 800kbit, 50mbit or 1gbit" + hint)
    rate = float(m.group(1)) * _RATE_UNITS[m.group(2)]
    if not rate > 0:
        raise _fail(key, value, "a rate must be more than 0 (leave rate out for no limit)")
    return rate


def parse_time(key: str, value: str) -> float:
    m = re.fullmatch(_NUMBER + r"\s*([a-z]*)", value.strip().lower())
    if m is None or m.group(2) not in _TIME_UNITS:
        raise _fail(key, value, "write a time like 250us, 10ms or 1.5s")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def parse_probability(key: str, value: str) -> float:
    text = value.strip()
    m = re.fullmatch(_NUMBER + r"\s*(%?)", text)
    if m is None:
        raise _fail(key, value, "write a percentage like 0.5% or a fraction like 0.005")
    p = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    if not 0.0 <= p <= 1.0:
        raise _fail(key, value, "must be between 0% and 100%")
    return p


def parse_count(key: str, value: str, minimum: int = 1) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) < minimum:
        raise _fail(key, value, f"write a whole number >= {minimum}")
    return int(text)


def _parse_outage(key: str, value: str) -> Outage:
    start_s, sep, end_s = value.partition("-")
    if not sep:
        raise _fail(key, value, "write START-END like 5s-7s, or START- to stay down")
    start = parse_time(key, start_s)
    end = parse_time(key, end_s) if end_s.strip() else math.inf
    if end <= start:
        raise _fail(key, value, "the end must come after the start")
    return Outage(start, end)


def _parse_flap(key: str, value: str) -> list[Outage]:
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise _fail(key, value, "write UP:DOWN like 20s:2s (optionally :UNTIL, e.g. 20s:2s:600s)")
    up, down = parse_time(key, parts[0]), parse_time(key, parts[1])
    until = parse_time(key, parts[2]) if len(parts) == 3 else 3600.0
    if up <= 0 or down <= 0:
        raise _fail(key, value, "both the up and the down time must be more than 0")
    count = until / (up + down)
    if count > MAX_OUTAGES:
        raise _fail(key, value, f"that is {count:.0f} outages; at most {MAX_OUTAGES} "
                                "(shorten UNTIL or lengthen the period)")
    out: list[Outage] = []
    t = up
    while t < until:
        out.append(Outage(t, t + down))
        t += up + down
    return out


@dataclass(slots=True)
class _Direction:
    fields: dict[str, Any] = field(default_factory=dict)
    outages: list[Outage] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT


def _apply(d: _Direction, key: str, value: str, name: str) -> None:
    f = d.fields
    if key == "rate":
        f["rate_bps"] = parse_rate(name, value)
    elif key == "delay":
        f["delay"] = parse_time(name, value)
    elif key == "jitter":
        f["jitter"] = parse_time(name, value)
    elif key == "loss":
        f["loss"] = parse_probability(name, value)
    elif key == "corrupt":
        f["corrupt"] = parse_probability(name, value)
    elif key == "reorder":
        prob, sep, hold = value.partition(":")
        f["reorder"] = parse_probability(name, prob)
        f["reorder_delay"] = parse_time(name, hold) if sep else 0.005
    elif key == "burst":
        parts = value.split(":")
        if len(parts) not in (2, 3, 4):
            raise _fail(name, value, "write P:R like 1%:30% (optionally :LOSS_BAD:LOSS_GOOD)")
        probs = [parse_probability(name, p) for p in parts]
        if probs[1] <= 0:
            raise _fail(name, value, "R (bad->good) must be more than 0 or the burst never ends")
        f["bursty"] = GilbertElliott(*probs)
    elif key == "queue":
        text = value.strip().lower()
        m = re.fullmatch(r"([0-9]+)\s*([a-z]*)", text)
        if m is None or (m.group(2) and m.group(2) not in _SIZE_UNITS):
            raise _fail(name, value, "write packets like 100 or bytes like 64kB or 1MB")
        if m.group(2):
            f["queue_bytes"] = int(m.group(1)) * _SIZE_UNITS[m.group(2)]
            f.pop("queue_packets", None)
        else:
            f["queue_packets"] = parse_count(name, m.group(1))
            f.pop("queue_bytes", None)
    elif key == "limit":
        d.limit = parse_count(name, value)
    elif key == "outage":
        d.outages.append(_parse_outage(name, value))
    elif key == "flap":
        d.outages.extend(_parse_flap(name, value))
    elif key == "overhead":
        f["overhead_bytes"] = parse_count(name, value, minimum=0)
    elif key == "ecn":
        # What the bottleneck does with the ECN field (tquic.sim's LinkProfile.ecn):
        # CE-mark instead of drop (classic: ECT beyond 5 ms of queue; l4s: ECT(1) beyond
        # 1 ms too, RFC 9332's idea), or clear it (bleach).
        mode = value.strip().lower()
        if mode not in ECN_MODES:
            raise _fail(name, value, f"write one of {', '.join(ECN_MODES)}")
        f["ecn"] = mode
    if len(d.outages) > MAX_OUTAGES:
        raise _fail(name, value, f"at most {MAX_OUTAGES} outage windows per direction")


@dataclass(frozen=True, slots=True)
class LinkRule:
    """Both directions of one emulated link and their datagram limits."""

    up: LinkProfile = field(default_factory=LinkProfile)
    down: LinkProfile = field(default_factory=LinkProfile)
    up_limit: int = DEFAULT_LIMIT
    down_limit: int = DEFAULT_LIMIT
    text: str = ""  # the profile as the user wrote it (for stats lines)


def _build(d: _Direction, text: str) -> tuple[LinkProfile, int]:
    fields = dict(d.fields)
    if ("rate_bps" in fields and "queue_packets" not in fields
            and "queue_bytes" not in fields):
        fields["queue_packets"] = DEFAULT_QUEUE_PACKETS
    fields["outages"] = tuple(sorted(d.outages, key=lambda o: o.start))
    try:
        return LinkProfile(**fields), d.limit
    except ProfileError as exc:  # a combination the sim model refuses
        raise NetemConfigError(f"profile {text!r}: {exc}") from None


def parse_profile(text: str | Iterable[tuple[str, str]]) -> LinkRule:
    """A profile from ``key=value,...`` text (or already split pairs)."""
    if isinstance(text, str):
        pairs: list[tuple[str, str]] = []
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep or not value.strip():
                raise NetemConfigError(
                    f"{item!r}: write key=value (for example delay=10ms); keys: {', '.join(_KEYS)}")
            pairs.append((key.strip(), value.strip()))
        shown = text
    else:
        pairs = list(text)
        shown = ",".join(f"{k}={v}" for k, v in pairs)
    up, down = _Direction(), _Direction()
    for raw_key, value in pairs:
        key = raw_key.lower()
        targets: tuple[_Direction, ...] = (up, down)
        if key.startswith(("up.", "down.")):
            direction, _, key = key.partition(".")
            targets = (up,) if direction == "up" else (down,)
        if key not in _KEYS:
            raise NetemConfigError(
                f"unknown profile key {raw_key!r}; keys: {', '.join(_KEYS)} "
                "(prefix with up. or down. for one direction)")
        for d in targets:
            _apply(d, key, value, raw_key)
    up_profile, up_limit = _build(up, shown)
    down_profile, down_limit = _build(down, shown)
    return LinkRule(up_profile, down_profile, up_limit, down_limit, shown)


def parse_address(text: str, what: str, *, allow_no_port: bool = False) -> Address:
    """``HOST:PORT`` or ``[IPV6]:PORT`` (or a bare host when ``allow_no_port``; port 0)."""
    text = text.strip()
    host, port_s = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise NetemConfigError(f"{what} {text!r}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise NetemConfigError(f"{what} {text!r}: write [IPV6]:PORT")
            port_s = rest[1:]
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    elif text.count(":") > 1:
        raise NetemConfigError(f"{what} {text!r}: put an IPv6 address in brackets: [::1]:4433")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise NetemConfigError(
            f"{what} {text!r}: {host!r} is not an IP address (write e.g. 127.0.0.2)") from None
    if not port_s:
        if allow_no_port:
            return (host, 0)
        raise NetemConfigError(f"{what} {text!r}: add a port, e.g. {host}:4433")
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise NetemConfigError(f"{what} {text!r}: the port must be a number in 0..65535")
    return (host, int(port_s))


@dataclass(frozen=True, slots=True)
class LinkTable:
    """Which rule applies to a client source address: exact host:port, then host, then
    the default (no impairment unless given)."""

    rules: tuple[tuple[Address, LinkRule], ...] = ()
    default: LinkRule = field(default_factory=lambda: LinkRule(text="no impairment"))

    def lookup(self, source: Address) -> LinkRule:
        host, port = source[0], source[1]
        host_rule: LinkRule | None = None
        for (rule_host, rule_port), rule in self.rules:
            if rule_host == host:
                if rule_port == port:
                    return rule
                if rule_port == 0:
                    host_rule = rule
        return host_rule if host_rule is not None else self.default

    def with_rule(self, address: Address, rule: LinkRule) -> LinkTable:
        kept = tuple((a, r) for a, r in self.rules if a != address)
        return replace(self, rules=(*kept, (address, rule)))


def parse_link_option(text: str) -> tuple[Address | None, LinkRule]:
    """``HOST[:PORT]=PROFILE`` (``--link``); HOST ``default`` or ``*`` → (None, rule)."""
    where, sep, profile = text.partition("=")
    if not sep:
        raise NetemConfigError(
            f"--link {text!r}: write SOURCE=PROFILE, e.g. 127.0.0.2=rate=50mbit,delay=10ms")
    where = where.strip()
    rule = parse_profile(profile)
    if where.lower() in ("default", "*"):
        return None, rule
    host, port = parse_address(where, "--link source", allow_no_port=True)
    return (_normal_host(host), port), rule


def _normal_host(host: str) -> str:
    return str(ipaddress.ip_address(host))


def _toml_pairs(table: Mapping[str, Any], where: str, prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in table.items():
        if key in ("up", "down") and not prefix:
            if not isinstance(value, Mapping):
                raise NetemConfigError(f"{where}.{key}: must be a table of profile keys")
            pairs.extend(_toml_pairs(value, f"{where}.{key}", f"{key}."))
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise NetemConfigError(
                    f"{where}.{key}: give a string like \"10ms\" or a number, got {v!r}")
            pairs.append((prefix + key, str(v)))
    return pairs


def table_from_toml(data: Mapping[str, Any]) -> tuple[LinkTable, dict[str, Any]]:
    """A link table and the top-level settings (listen, target, seed, stats_interval,
    epoch) from a parsed TOML document::

        listen = "127.0.0.1:4433"
        target = "127.0.0.1:4434"
        [links.default]
        rate = "100mbit"
        [links."127.0.0.2"]
        rate = "50mbit"
        delay = "10ms"
        outage = ["5s-7s", "20s-21s"]
        up = { rate = "10mbit" }
    """
    settings = {k: v for k, v in data.items() if k != "links"}
    unknown = set(settings) - {"listen", "target", "seed", "stats_interval", "epoch"}
    if unknown:
        raise NetemConfigError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; "
            "use listen, target, seed, stats_interval, epoch and [links.\"ADDRESS\"] tables")
    links = data.get("links", {})
    if not isinstance(links, Mapping):
        raise NetemConfigError("links: must be tables like [links.\"127.0.0.2\"]")
    table = LinkTable()
    for where, body in links.items():
        if not isinstance(body, Mapping):
            raise NetemConfigError(f"links.{where}: must be a table of profile keys")
        rule = parse_profile(_toml_pairs(body, f"links.{where}"))
        if where.lower() in ("default", "*"):
            table = replace(table, default=rule)
        else:
            host, port = parse_address(where, f"[links.{where!r}]", allow_no_port=True)
            table = table.with_rule((_normal_host(host), port), rule)
    return table, settings

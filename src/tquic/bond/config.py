"""The bond daemons' configuration: every command-line flag is also a key of a TOML file.

``tquic bond server --config /etc/tquic/bond-server.toml`` reads the file
(``tomllib``); flags given on the command line win over the file's keys.  The
whole configuration is checked before anything is applied: one bad key gives
one :class:`~tquic.bond.links_config.BondConfigError` line naming the key and
what to write, and nothing is half-applied.  docs/bond.md has the examples.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tquic.bond.credentials import check_ca_file, check_client_credentials
from tquic.bond.fec.config import FecConfig, FecConfigError
from tquic.bond.links_config import BondConfigError, LinkConfig, check_links, parse_link
from tquic.bond.tcp_lane.policy import PolicyError, TargetPolicy
from tquic.h3.connect_ip import IPNetwork
from tquic.io.admission import EndpointLimits, limits_from_mapping

DEFAULT_PORT = 4433
DEFAULT_STATE_DIR = "/var/lib/tquic-bond"


@dataclass(frozen=True, slots=True)
class ReorderConfig:
    """The receiver's reorder buffer (tquic.bond.reorder): on by default."""

    enabled: bool = True
    max_wait: float = 0.1  # seconds: the adaptive bound never exceeds this
    factor: float = 2.0  # bound = factor x RTT spread + margin
    margin: float = 0.010


@dataclass(frozen=True, slots=True)
class ClientConfig:
    server: tuple[str, int]
    links: tuple[LinkConfig, ...]
    ca: str | None = None
    insecure: bool = False
    token: str | None = None
    cert: str | None = None  # our TLS client certificate (PEM) for a server with client_ca
    key: str | None = None  # its private key (PEM)
    tun: str = "bond0"
    routes: tuple[IPNetwork, ...] = ()
    socks: tuple[str, int] | None = None  # the TCP lane's SOCKS5 listener (tcp_lane)
    redirect: tuple[str, int] | None = None  # the TCP lane's transparent listener
    socks_user: str | None = None  # RFC 1929 credentials the SOCKS5 listener requires
    socks_password: str | None = None
    redirect_interface: str | None = None  # LAN interface whose TCP nftables redirects
    state_dir: str = DEFAULT_STATE_DIR
    reorder: ReorderConfig = field(default_factory=ReorderConfig)
    cc: str = "cubic"
    scheduler: str = "bond"
    guard: bool = True  # demote a link whose inclusion lowers goodput
    userspace: bool = False  # no TUN: packets come from/to a test harness
    fec: FecConfig = field(default_factory=lambda: FecConfig(enabled=False))  # [fec] (docs/fec.md)


@dataclass(frozen=True, slots=True)
class ClientEntry:
    """One client the server knows (a [[client]] table of the clients file)."""

    name: str
    token_sha256: str | None = None  # hex SHA-256 of the bearer token
    cert_sha256: str | None = None  # hex SHA-256 of its TLS certificate (else: CN = name)
    address: tuple[IPNetwork, ...] = ()  # fixed tunnel addresses (else from the pool)
    routes: tuple[IPNetwork, ...] = ()  # networks behind this client (site-to-site)
    reach: tuple[str, ...] = ()  # other clients' names it may send to ("*": all)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: tuple[str, int]
    cert: str
    key: str
    pool: tuple[IPNetwork, ...]
    token: str | None = None
    clients: tuple[ClientEntry, ...] = ()
    client_ca: str | None = None  # CA of the clients' TLS certificates (then required)
    nat: bool = False
    tun: str = "bondsrv0"
    isolate: bool = True  # clients do not reach each other unless a client's reach says so
    max_clients: int = 256
    auth_failures_per_minute: int = 10  # per source address, then 429 until it calms down
    reorder: ReorderConfig = field(default_factory=ReorderConfig)
    cc: str = "cubic"
    scheduler: str = "bond"
    userspace: bool = False
    # The TCP lane's target policy (tquic.bond.tcp_lane); None: the lane is off.
    lane: TargetPolicy | None = field(default_factory=TargetPolicy)
    fec: FecConfig = field(default_factory=lambda: FecConfig(enabled=False))  # [fec] (docs/fec.md)
    # Processes sharing the port, each with its own TUN and pool slice
    # (tquic.bond.server_workers); max_clients and the auth-failure budget are per worker.
    workers: int = 1
    # The QUIC endpoint's defences (tquic.io.admission; docs/hardening.md): the [limits]
    # table, each key an EndpointLimits field.
    limits: EndpointLimits = field(default_factory=EndpointLimits)


# -- small parsers ----------------------------------------------------------------------


def parse_hostport(value: object, key: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``; ``HOST`` alone when a default port exists."""
    if not isinstance(value, str) or not value:
        raise BondConfigError(key, "write HOST:PORT, e.g. 192.0.2.1:4433 or [2001:db8::1]:4433")
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise BondConfigError(key, f"{value!r}: a ']' must close the IPv6 address")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise BondConfigError(key, f"{value!r}: add the port, e.g. {host}:{DEFAULT_PORT}")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BondConfigError(key, f"{value!r}: the port must be 1..65535")
    return host or "::", int(port_text)


def parse_network(value: object, key: str) -> IPNetwork:
    if not isinstance(value, str):
        raise BondConfigError(key, "write a CIDR such as 10.99.0.0/24 or 2001:db8:99::/64")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise BondConfigError(key, f"{value!r}: {exc}; write a CIDR such as 10.99.0.0/24") from None


def _networks(value: object, key: str) -> tuple[IPNetwork, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(parse_network(v, f"{key}[{i}]" if len(items) > 1 else key)
                 for i, v in enumerate(items))


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise BondConfigError(key, "write true or false")
    return value


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise BondConfigError(key, "write a non-empty string")
    return value


def _file(value: object, key: str) -> str:
    path = _text(value, key)
    if not os.path.isfile(path):
        raise BondConfigError(key, f"no such file {path!r}")
    return path


def _interface_name(value: object, key: str) -> str:
    name = _text(value, key)
    if len(name) > 15 or "/" in name or " " in name:
        raise BondConfigError(key, f"{name!r}: an interface name of 1-15 characters")
    return name


def _positive_int(value: object, key: str, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= top:
        raise BondConfigError(key, f"write a whole number 1..{top}")
    return value


def _reorder(value: object, key: str = "reorder") -> ReorderConfig:
    if not isinstance(value, dict):
        raise BondConfigError(key, "write a table: [reorder] enabled = true, max_wait = 0.1")
    unknown = sorted(set(value) - {"enabled", "max_wait", "factor", "margin"})
    if unknown:
        raise BondConfigError(f"{key}.{unknown[0]}", "unknown key; use enabled, max_wait, "
                                                     "factor, margin")
    base = ReorderConfig()
    numbers: dict[str, float] = {}
    for name, top in (("max_wait", 2.0), ("factor", 10.0), ("margin", 1.0)):
        raw = value.get(name, getattr(base, name))
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not (
                math.isfinite(raw) and 0 <= raw <= top):
            raise BondConfigError(f"{key}.{name}", f"write a number 0..{top:g}")
        numbers[name] = float(raw)
    return ReorderConfig(_bool(value.get("enabled", True), f"{key}.enabled"), **numbers)


# -- loading ------------------------------------------------------------------------------


def read_toml(path: str) -> dict[str, Any]:
    """The file's table; a missing or invalid file is a BondConfigError naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise BondConfigError("config", f"cannot read {path!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BondConfigError("config", f"{path}: not valid TOML ({exc})") from None


def merged(cli: Mapping[str, Any], config_path: str | None) -> dict[str, Any]:
    """The file's keys, overridden by every flag given (None or [] = not given: the CLI's
    defaults are None so a file's value is not masked by a default)."""
    values = read_toml(config_path) if config_path else {}
    for key, value in cli.items():
        if value is None or value == []:
            continue
        values[key] = value
    return values


_CLIENT_KEYS = frozenset({"server", "link", "ca", "insecure", "token", "cert", "key", "tun",
                          "route", "socks", "redirect", "state_dir", "reorder", "cc",
                          "scheduler", "guard", "userspace", "log_level", "control",
                          "socks_user", "socks_password", "redirect_interface", "fec"})
_SERVER_KEYS = frozenset({"listen", "cert", "key", "pool", "token", "clients", "client_ca",
                          "nat", "tun",
                          "isolate", "max_clients", "auth_failures_per_minute", "reorder", "cc",
                          "scheduler", "userspace", "log_level", "control",
                          "lane", "lane_allow", "lane_deny", "lane_ports", "lane_deny_ports",
                          "fec", "workers", "limits"})


def _fec(value: object) -> FecConfig:
    """The ``[fec]`` table (tquic.bond.fec.config); absent: we protect nothing (a peer's
    repairs are still decoded)."""
    if value is None:
        return FecConfig(enabled=False)
    if not isinstance(value, Mapping):
        raise BondConfigError("fec", "write a [fec] table (docs/fec.md)")
    try:
        return FecConfig.from_toml(value)
    except FecConfigError as exc:
        key, _, why = str(exc).partition(": ")
        raise BondConfigError(key, why) from None


def _limits(value: object) -> EndpointLimits:
    """The ``[limits]`` table: the server endpoint's bounds and rates (docs/hardening.md)."""
    if value is None:
        return EndpointLimits()
    if not isinstance(value, Mapping):
        raise BondConfigError("limits", "write a [limits] table (docs/hardening.md)")
    try:
        return limits_from_mapping(value)
    except ValueError as exc:
        key, _, why = str(exc).partition(": ")
        raise BondConfigError(f"limits.{key}", why) from None


def _check_keys(values: Mapping[str, Any], known: frozenset[str]) -> None:
    for key in values:
        if key not in known:
            raise BondConfigError(key, f"unknown key; known keys: {', '.join(sorted(known))}")


def client_config(values: Mapping[str, Any]) -> ClientConfig:
    """Validate a merged client table (see :func:`merged`)."""
    _check_keys(values, _CLIENT_KEYS)
    if "server" not in values:
        raise BondConfigError("server", "required: --server HOST:PORT (or server = \"HOST:PORT\")")
    server = parse_hostport(values["server"], "server", DEFAULT_PORT)
    raw_links = values.get("link", [])
    if not isinstance(raw_links, list):
        raise BondConfigError("link", "write a list: link = [\"192.0.2.10%eth1\", ...]")
    links = tuple(parse_link(v, f"link[{i}]") for i, v in enumerate(raw_links))
    check_links(links)
    insecure = _bool(values.get("insecure", False), "insecure")
    ca = _file(values["ca"], "ca") if values.get("ca") is not None else None
    if ca is None and not insecure:
        raise BondConfigError("ca", "give --ca FILE (the server's CA certificate) or --insecure "
                                    "(no certificate check: for tests only)")
    token = _text(values["token"], "token") if values.get("token") is not None else None
    cert = _file(values["cert"], "cert") if values.get("cert") is not None else None
    key = _file(values["key"], "key") if values.get("key") is not None else None
    if (cert is None) != (key is None):
        raise BondConfigError("key" if key is None else "cert",
                              "give --cert FILE and --key FILE together (our TLS client "
                              "certificate and its key)")
    if cert is not None and key is not None:
        check_client_credentials(cert, key)
    routes = _networks(values.get("route", []), "route") if values.get("route") else ()
    socks = (parse_hostport(values["socks"], "socks") if values.get("socks") else None)
    redirect = (parse_hostport(values["redirect"], "redirect") if values.get("redirect")
                else None)
    socks_user = _text(values["socks_user"], "socks_user") if values.get("socks_user") else None
    socks_password = (_text(values["socks_password"], "socks_password")
                      if values.get("socks_password") else None)
    if (socks_user is None) != (socks_password is None):
        raise BondConfigError("socks_user" if socks_user is None else "socks_password",
                              "give --socks-user and --socks-password together")
    if socks_user is not None and socks is None:
        raise BondConfigError("socks_user", "only with --socks ADDR:PORT")
    for name, secret in (("socks_user", socks_user), ("socks_password", socks_password)):
        if secret is not None and not 1 <= len(secret.encode()) <= 255:
            raise BondConfigError(name, "1..255 bytes (RFC 1929)")
    redirect_interface = (_interface_name(values["redirect_interface"], "redirect_interface")
                          if values.get("redirect_interface") else None)
    if redirect_interface is not None and redirect is None:
        raise BondConfigError("redirect_interface", "only with --redirect ADDR:PORT")
    return ClientConfig(
        server=server, links=links, ca=ca, insecure=insecure, token=token, cert=cert, key=key,
        tun=_interface_name(values.get("tun", "bond0"), "tun"), routes=routes, socks=socks,
        redirect=redirect, state_dir=_text(values.get("state_dir", DEFAULT_STATE_DIR), "state_dir"),
        reorder=_reorder(values.get("reorder", {})), cc=_text(values.get("cc", "cubic"), "cc"),
        scheduler=_text(values.get("scheduler", "bond"), "scheduler"),
        guard=_bool(values.get("guard", True), "guard"),
        userspace=_bool(values.get("userspace", False), "userspace"),
        socks_user=socks_user, socks_password=socks_password,
        redirect_interface=redirect_interface, fec=_fec(values.get("fec")))


def _string_list(value: object, key: str) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in items):
        raise BondConfigError(key, "write a list of strings, e.g. [\"10.0.0.0/8\"]")
    return [str(v) for v in items]


def _lane_policy(values: Mapping[str, Any]) -> TargetPolicy | None:
    """The TCP lane's target policy from lane, lane_allow, lane_deny, lane_ports,
    lane_deny_ports (tquic.bond.tcp_lane.policy; docs/bond.md "TCP lane")."""
    if not _bool(values.get("lane", True), "lane"):
        return None
    lists = {name: _string_list(values[f"lane_{name}"], f"lane_{name}")
             for name in ("allow", "deny", "ports", "deny_ports") if values.get(f"lane_{name}")}
    try:
        return TargetPolicy.build(**lists)  # type: ignore[arg-type]
    except PolicyError as exc:
        field_name, _, why = str(exc).partition(": ")
        raise BondConfigError(f"lane_{field_name}", why) from None


def _client_entry(table: object, key: str) -> ClientEntry:
    if not isinstance(table, dict):
        raise BondConfigError(key, "write a [[client]] table with name and token_sha256")
    known = {"name", "token_sha256", "cert_sha256", "address", "routes", "reach"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise BondConfigError(f"{key}.{unknown[0]}", f"unknown key; use {', '.join(sorted(known))}")
    name = _text(table.get("name"), f"{key}.name")
    value = table.get("token_sha256")
    if value is not None and not _hex64(value):
        raise BondConfigError(f"{key}.token_sha256", f"client {name!r}: 64 hex digits; make "
                              "them with 'tquic bond hash-token TOKEN'")
    cert_sha256 = table.get("cert_sha256")
    if cert_sha256 is not None and not _hex64(cert_sha256):
        raise BondConfigError(f"{key}.cert_sha256", f"client {name!r}: 64 hex digits, e.g. "
                              "from 'openssl x509 -in CERT -outform der | sha256sum'")
    address = _networks(table["address"], f"{key}.address") if "address" in table else ()
    routes = _networks(table["routes"], f"{key}.routes") if table.get("routes") else ()
    reach = table.get("reach", [])
    if not isinstance(reach, list) or not all(isinstance(r, str) for r in reach):
        raise BondConfigError(f"{key}.reach", "write a list of client names, or [\"*\"]")
    return ClientEntry(name, value.lower() if isinstance(value, str) else None,
                       cert_sha256.lower() if isinstance(cert_sha256, str) else None,
                       address, routes, tuple(reach))


def _workers(value: object, pool: tuple[IPNetwork, ...]) -> int:
    """``workers``: 1..32 or "auto" (the CPUs this process may run on); every worker
    needs a slice of each pool network (tquic.bond.pool.pool_slices)."""
    from tquic.bond.pool import PoolTooSmall, pool_slices
    from tquic.wire.quic_lb import MAX_WORKERS

    if value == "auto":
        count = min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(
            os, "sched_getaffinity") else os.cpu_count() or 1)
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        raise BondConfigError("workers", f"--workers takes 1..{MAX_WORKERS} or auto, "
                                         f"got {value!r}")
    if not 1 <= count <= MAX_WORKERS:
        raise BondConfigError("workers", f"--workers takes 1..{MAX_WORKERS} or auto (one "
                                         f"process per core), got {count}")
    try:
        pool_slices(pool, count)
    except PoolTooSmall as exc:
        raise BondConfigError("workers", f"--workers {count}: pool {exc}") from None
    return count


def _hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value.lower())


def load_clients_file(path: str) -> tuple[ClientEntry, ...]:
    """The ``--clients FILE``: ``[[client]]`` tables (name, token_sha256, address…)."""
    table = read_toml(path)
    entries = table.get("client", [])
    if not isinstance(entries, list) or not entries:
        raise BondConfigError("clients", f"{path}: no [[client]] table; see docs/bond.md")
    out = tuple(_client_entry(e, f"client[{i}]") for i, e in enumerate(entries))
    names = [e.name for e in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise BondConfigError(f"client[{i}].name", f"{name!r} appears twice")
    return out


def server_config(values: Mapping[str, Any]) -> ServerConfig:
    """Validate a merged server table (see :func:`merged`)."""
    _check_keys(values, _SERVER_KEYS)
    listen = parse_hostport(values.get("listen", f"[::]:{DEFAULT_PORT}"), "listen", DEFAULT_PORT)
    for required in ("cert", "key", "pool"):
        if values.get(required) is None:
            raise BondConfigError(required, f"required: --{required} (or {required} = ... in "
                                            "the config file)")
    pool = _networks(values["pool"], "pool")
    for i, net in enumerate(pool):
        if net.num_addresses < 4:
            raise BondConfigError(f"pool[{i}]" if len(pool) > 1 else "pool",
                                  f"{net} is too small; give at least a /30 (IPv4) or /126")
    token = _text(values["token"], "token") if values.get("token") is not None else None
    clients: tuple[ClientEntry, ...] = ()
    if values.get("clients") is not None:
        clients_value = values["clients"]
        if isinstance(clients_value, list):  # [[clients]] inline in the config file
            clients = tuple(_client_entry(e, f"clients[{i}]") for i, e in enumerate(clients_value))
        else:
            clients = load_clients_file(_file(clients_value, "clients"))
    client_ca = None
    if values.get("client_ca") is not None:
        client_ca = _file(values["client_ca"], "client_ca")
        check_ca_file(client_ca, "client_ca")
    if token is None and not clients and client_ca is None:
        raise BondConfigError("token", "give --token T (one shared client), --clients FILE "
                                       "(a token hash per client) or --client-ca FILE (TLS "
                                       "client certificates)")
    for i, entry in enumerate(clients):
        if entry.token_sha256 is None and client_ca is None:
            raise BondConfigError(f"client[{i}].token_sha256", f"client {entry.name!r}: "
                                  "required unless the server has client_ca (certificates)")
    for entry in clients:
        for net in entry.address:
            if not any(net.subnet_of(p) for p in pool if p.version == net.version):  # type: ignore[arg-type]
                raise BondConfigError("clients", f"client {entry.name!r}: address {net} is "
                                                 "outside the pool")
    workers = _workers(values.get("workers", 1), pool)
    if workers > 1 and values.get("userspace"):
        raise BondConfigError("workers", "--workers needs TUN devices: not with userspace")
    return ServerConfig(
        workers=workers,
        listen=listen, cert=_file(values["cert"], "cert"), key=_file(values["key"], "key"),
        pool=pool, token=token, clients=clients, client_ca=client_ca, nat=_bool(values.get("nat", False), "nat"),
        tun=_interface_name(values.get("tun", "bondsrv0"), "tun"),
        isolate=_bool(values.get("isolate", True), "isolate"),
        max_clients=_positive_int(values.get("max_clients", 256), "max_clients", 65535),
        auth_failures_per_minute=_positive_int(values.get("auth_failures_per_minute", 10),
                                               "auth_failures_per_minute", 100000),
        reorder=_reorder(values.get("reorder", {})), cc=_text(values.get("cc", "cubic"), "cc"),
        scheduler=_text(values.get("scheduler", "bond"), "scheduler"),
        userspace=_bool(values.get("userspace", False), "userspace"),
        lane=_lane_policy(values), fec=_fec(values.get("fec")),
        limits=_limits(values.get("limits")))

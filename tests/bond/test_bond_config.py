"""Bond configuration: flags and TOML keys, one-line errors naming the key (tquic.bond.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tquic.bond.config import client_config, merged, server_config
from tquic.bond.links_config import BondConfigError, parse_cap, parse_link


def test_link_spec_with_options() -> None:
    link = parse_link("192.0.2.10%wwan0,role=backup,weight=2,cap=10GB/month,max_rtt=300ms,"
                      "max_loss=5%")
    assert (link.address, link.interface, link.role, link.weight) == ("192.0.2.10", "wwan0",
                                                                      "backup", 2.0)
    assert link.cap is not None and link.cap.limit == 10 * 10**9 and link.cap.period == "month"
    assert link.max_rtt == pytest.approx(0.3) and link.max_loss == pytest.approx(0.05)
    assert link.name == "wwan0"
    only_iface = parse_link("%eth1")
    assert only_iface.address is None and only_iface.interface == "eth1"
    table = parse_link({"interface": "eth2", "weight": 3, "name": "dsl"})
    assert table.name == "dsl" and table.weight == 3.0


@pytest.mark.parametrize(("spec", "key", "hint"), [
    ("192.0.2.10,role=primery", "link.role", "primary, backup or never"),
    ("192.0.2.10,weight=-1", "link.weight", "number"),
    ("192.0.2.10,cap=10GB", "link.cap", "10GB/month"),
    ("192.0.2.10,cap=10XB/month", "link.cap", "unit"),
    ("192.0.2.10,cap=1GB/year", "link.cap", "period"),
    ("example.com", "link", "ADDR%IFACE"),
    ("192.0.2.10%", "link", "interface"),
    ("192.0.2.10,colour=red", "link.colour", "unknown"),
    ("192.0.2.10,max_loss=150%", "link.max_loss", "between"),
    ("192.0.2.10,max_rtt=soon", "link.max_rtt", "duration"),
])
def test_bad_link_names_the_key_and_what_to_write(spec: str, key: str, hint: str) -> None:
    with pytest.raises(BondConfigError) as info:
        parse_link(spec)
    assert info.value.key == key
    assert hint in str(info.value)
    assert "\n" not in str(info.value)


def test_caps() -> None:
    assert parse_cap("500MiB/day").limit == 500 << 20
    assert parse_cap("1.5 TB / week").limit == 1_500_000_000_000


def _toml(tmp: Path, text: str) -> str:
    path = tmp / "bond.toml"
    path.write_text(text)
    return str(path)


def test_client_from_toml_with_flag_override(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    path = _toml(tmp_path, f'''
server = "vps.example.net:4433"
ca = "{ca}"
token = "secret"
route = ["0.0.0.0/1", "128.0.0.0/1"]
link = ["%wwan0,role=backup,cap=20GB/month", {{ interface = "eth1", weight = 3 }}]
[reorder]
max_wait = 0.05
''')
    cfg = client_config(merged({"tun": "bondx", "token": None, "link": []}, path))
    assert cfg.server == ("vps.example.net", 4433) and cfg.tun == "bondx"
    assert [link.name for link in cfg.links] == ["wwan0", "eth1"]
    assert len(cfg.routes) == 2 and cfg.reorder.max_wait == 0.05
    assert cfg.token == "secret"


@pytest.mark.parametrize(("values", "key"), [
    ({"link": ["10.0.0.1"], "insecure": True}, "server"),
    ({"server": "h:1", "link": ["10.0.0.1"]}, "ca"),
    ({"server": "h:1", "insecure": True}, "link"),
    ({"server": "h:1", "insecure": True, "link": ["10.0.0.1,role=never"]}, "link"),
    ({"server": "h:99999", "insecure": True, "link": ["10.0.0.1"]}, "server"),
    ({"server": "h:1", "insecure": True, "link": ["10.0.0.1"], "route": ["10.0.0.1/8"]}, "route"),
    ({"server": "h:1", "insecure": True, "link": ["10.0.0.1"], "tunn": "x"}, "tunn"),
    ({"server": "h:1", "insecure": True, "link": ["10.0.0.1"], "reorder": {"max_wait": 9}},
     "reorder.max_wait"),
    ({"server": "h:1", "insecure": "yes", "link": ["10.0.0.1"]}, "insecure"),
    ({"server": "h:1", "insecure": True, "link": ["10.0.0.1", "10.0.0.1"]}, "link[1].name"),
])
def test_bad_client_config_names_the_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(BondConfigError) as info:
        client_config(values)
    assert info.value.key == key, str(info.value)


def test_server_config_and_clients_file(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    clients = tmp_path / "clients.toml"
    clients.write_text('[[client]]\nname = "home"\ntoken_sha256 = "' + "ab" * 32 + '"\n'
                       'address = "10.99.0.10/32"\nreach = ["office"]\n'
                       '[[client]]\nname = "office"\ntoken_sha256 = "' + "cd" * 32 + '"\n')
    cfg = server_config({"listen": "0.0.0.0:4433", "cert": str(cert), "key": str(cert),
                         "pool": "10.99.0.0/24", "clients": str(clients), "nat": True})
    assert cfg.listen == ("0.0.0.0", 4433) and cfg.nat
    assert [c.name for c in cfg.clients] == ["home", "office"]
    assert cfg.clients[0].reach == ("office",)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[client]]\nname = "x"\ntoken_sha256 = "nothex"\n')
    with pytest.raises(BondConfigError) as info:
        server_config({"cert": str(cert), "key": str(cert), "pool": "10.99.0.0/24",
                       "clients": str(bad)})
    assert info.value.key == "client[0].token_sha256" and "hash-token" in str(info.value)
    with pytest.raises(BondConfigError) as info:
        server_config({"cert": str(cert), "key": str(cert), "pool": "10.99.0.0/24"})
    assert info.value.key == "token"
    with pytest.raises(BondConfigError) as info:
        server_config({"cert": str(cert), "key": str(cert), "pool": "10.99.0.0/31", "token": "t"})
    assert info.value.key == "pool"


def test_unreadable_or_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(BondConfigError) as info:
        merged({}, str(tmp_path / "missing.toml"))
    assert info.value.key == "config"
    with pytest.raises(BondConfigError, match="not valid TOML"):
        merged({}, _toml(tmp_path, "server = "))


def test_server_limits_table_sets_the_endpoint_defences(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    base = {"cert": str(cert), "key": str(cert), "pool": "10.99.0.0/24", "token": "t"}
    values = merged({}, _toml(tmp_path, "[limits]\nmax_connections = 100\n"
                                        "junk_per_peer = 50\nkernel_filter = false\n"
                                        "retry = \"always\"\n"))
    limits = server_config({**base, **values}).limits
    assert (limits.max_connections, limits.junk_per_peer, limits.kernel_filter,
            limits.retry) == (100, 50.0, False, "always")
    assert server_config(base).limits.kernel_filter  # the defaults without a table


@pytest.mark.parametrize(("table", "key", "hint"), [
    ({"max_conections": 5}, "limits.max_conections", "unknown limit; known: "),
    ({"max_connections": 1.5}, "limits.max_connections", "whole number"),
    ({"max_connections": 0}, "limits.max_connections", "at least 1"),
    ({"kernel_filter": "yes"}, "limits.kernel_filter", "true or false"),
    ({"junk_per_peer": "many"}, "limits.junk_per_peer", "a number"),
    ({"retry": "sometimes"}, "limits.retry", "'auto'"),
    (5, "limits", "[limits] table"),
])
def test_server_limits_errors_name_the_key(tmp_path: Path, table: object, key: str,
                                           hint: str) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(BondConfigError) as info:
        server_config({"cert": str(cert), "key": str(cert), "pool": "10.99.0.0/24",
                       "token": "t", "limits": table})
    assert info.value.key == key and hint in info.value.message

"""The control plane of real bond daemons (tquic.bond over loopback, packets through the
tunnel both ways): what the API shows is the daemons' state, and what it is told the
client does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from bond_live import BondLab
from control_running import TOKEN

from tquic.control.client import ControlClient, ControlClientError

parser = pytest.importorskip("prometheus_client.parser",
                             reason="prometheus-client is not installed")
pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BondLab]:
    from tquic.crypto.tls.certs import generate_self_signed

    certs = tmp_path_factory.mktemp("bondcerts")
    cert, key = generate_self_signed(("localhost", "127.0.0.1"), key_type="ec")
    (certs / "cert.pem").write_bytes(cert)
    (certs / "key.pem").write_bytes(key)
    lab = BondLab(certs, control="127.0.0.1:0", token=TOKEN)
    try:
        api = ControlClient(lab.address, TOKEN)
        deadline = time.monotonic() + 20
        while api.get("/status")["links_up"] < 2 or api.get("/tunnel")["tunnel"][
                "packets_in"] < 200:
            assert time.monotonic() < deadline, api.get("/links")
            time.sleep(0.2)
        yield lab
    finally:
        lab.close()


def client_api(lab: BondLab) -> ControlClient:
    return ControlClient(lab.address, TOKEN)


def daemon_link(lab: BondLab, name: str) -> Any:
    return next(row for row in lab.call(lambda: _status(lab)).links if row.name == name)


async def _status(lab: BondLab) -> Any:
    return lab.client.status()


def test_the_client_api_shows_the_bond_as_the_daemon_sees_it(lab: BondLab) -> None:
    api = client_api(lab)
    status = api.get("/status")
    assert status["daemon"] == "bond client" and status["connected"] is True
    assert status["endpoint"] is None  # a client has no listener to defend
    assert status["tunnel_address"] == ["10.99.0.2/32"]
    links = {link["name"]: link for link in api.get("/links")["links"]}
    assert set(links) == {"dsl", "lte"}
    daemon = lab.call(lambda: _status(lab))
    for row in daemon.links:
        link = links[row.name]
        assert (link["state"], link["role"], link["weight"]) == (row.state, row.role, row.weight)
        assert link["min_rtt"] == pytest.approx(row.min_rtt_ms / 1000, rel=0.2)
    assert links["lte"]["data_cap"]["text"] == "10GB/month"
    assert links["dsl"]["data_cap"] is None
    tunnel = api.get("/tunnel")["tunnel"]
    assert tunnel["packets_in"] > 0 and tunnel["packets_out"] > 0
    assert set(tunnel["drops"]) == {"queue_or_size", "too_big", "spoofed_source", "isolated"}
    assert tunnel["reorder"]["bound"] is not None
    settings = {s["name"]: s for s in api.get("/config")["settings"]}
    assert settings["scheduler"]["runtime"] is True and settings["tun"]["runtime"] is False
    assert settings["token"]["value"] == "(set)"  # never the secret itself
    kinds = {e["kind"] for e in api.get("/events")["events"]}
    assert "daemon" in kinds  # the daemon's own change lines are in the log


def test_steering_through_the_api_changes_the_client(lab: BondLab) -> None:
    api = client_api(lab)
    answer = api.request("PUT", "/links/lte", {"role": "backup", "weight": 2,
                                               "cap": "5GB/week"})
    assert answer["link"]["role"] == "backup" and answer["link"]["weight"] == 2
    row = daemon_link(lab, "lte")
    assert (row.role, row.weight, row.cap_bytes, row.cap_period) == (
        "backup", 2.0, 5 * 10**9, "week")
    api.request("PUT", "/links/lte", {"role": "primary", "weight": 1, "cap": "unlimited"})
    assert daemon_link(lab, "lte").cap_bytes is None
    api.request("POST", "/links/dsl/down")
    deadline = time.monotonic() + 5
    while daemon_link(lab, "dsl").state != "disabled":
        assert time.monotonic() < deadline, daemon_link(lab, "dsl")
        time.sleep(0.1)
    # The API answers from its latest sample (every 0.5 s here): wait for one after it.
    while api.get("/links/dsl")["link"]["state"] != "disabled":
        assert time.monotonic() < deadline + 5, api.get("/links/dsl")
        time.sleep(0.1)
    api.request("POST", "/links/dsl/up")
    deadline = time.monotonic() + 10
    while daemon_link(lab, "dsl").state != "up":
        assert time.monotonic() < deadline, daemon_link(lab, "dsl")
        time.sleep(0.1)
    messages = [e["message"] for e in api.get("/events")["events"]]
    assert "link dsl: switched off by the operator" in messages
    assert "dsl: taken down (API)" in messages


@pytest.mark.parametrize(("method", "path", "body", "status", "text"), [
    ("POST", "/reload", None, 409, "no config file"),
    ("POST", "/reopen", {"link": "lte"}, 409, "link lte is"),  # it has a path
    ("PUT", "/links/wifi", {"role": "backup"}, 404, "no link 'wifi'; links: dsl, lte"),
    ("PUT", "/links/lte", {"role": "sometimes"}, 422, "role must be one of"),
])
def test_refusals_from_the_bond(lab: BondLab, method: str, path: str, body: object,
                                status: int, text: str) -> None:
    with pytest.raises(ControlClientError) as info:
        client_api(lab).request(method, path, body)  # type: ignore[arg-type]
    assert info.value.status == status and text in info.value.message


def test_the_server_api_shows_its_clients_and_is_read_only(lab: BondLab) -> None:
    api = ControlClient(lab.server_control.address)
    status = api.get("/status")
    assert status["daemon"] == "bond server" and status["clients"] == 1
    deadline = time.monotonic() + 10
    while True:  # an earlier test took a link down and up: its new path may be opening
        (client,) = api.get("/clients")["clients"]
        if client["paths"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert client["addresses"] == ["10.99.0.2/32"] and client["paths"] == 2
    names = [link["name"] for link in api.get("/links")["links"]]
    assert names and all(name.startswith(f"{client['name']}.path") for name in names)
    with pytest.raises(ControlClientError) as info:
        api.request("PUT", f"/links/{names[0]}", {"role": "backup"})
    assert info.value.status == 405
    text = api.get("/metrics")
    families = {f.name for f in parser.text_string_to_metric_families(text)}
    assert {"tquic_client_bytes_sent", "tquic_tunnel_packets", "tquic_path_srtt_seconds",
            "tquic_tunnel_reorder_delay_seconds", "tquic_endpoint_events",
            "tquic_endpoint_retry_active", "tquic_endpoint_connections"} <= families
    # The server's listener: its client's connection, the datagrams it received.
    endpoint = status["endpoint"]
    assert endpoint["connections"] >= 1 and endpoint["events"]["datagrams_received"] > 0
    assert endpoint["events"]["connections_accepted"] >= 1


def test_status_command_over_the_real_bond(lab: BondLab, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    from tquic.cli.main import main

    assert main(["bond", "status", "--control", lab.address, "--control-token", TOKEN]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tquic bond client")
    rows = {line.split()[0] for line in out.splitlines() if line.startswith(("  dsl", "  lte"))}
    assert rows == {"dsl", "lte"}
    assert "tunnel: in " in out and "reorder buffer: held" in out


def test_the_control_keys_of_a_bond_config_file(tmp_path: pytest.TempPathFactory) -> None:
    import argparse
    from pathlib import Path

    from tquic.bond.config import client_config, merged
    from tquic.bond.links_config import BondConfigError
    from tquic.cli.bond_view import take_control_keys

    path = Path(str(tmp_path)) / "bond.toml"
    path.write_text('server = "192.0.2.1:4433"\ninsecure = true\nlink = ["127.0.0.2"]\n'
                    'control = "127.0.0.1:9180"\ncontrol_token = "@/etc/tquic/token"\n'
                    'control_interval = 0.5\n')
    args = argparse.Namespace(control=None, control_token=None, control_interval=None)
    config = client_config(take_control_keys(merged({}, str(path)), args))
    assert config.server == ("192.0.2.1", 4433)
    assert (args.control, args.control_token, args.control_interval) == (
        "127.0.0.1:9180", "@/etc/tquic/token", 0.5)
    flags = argparse.Namespace(control="/run/x.sock", control_token=None, control_interval=None)
    take_control_keys(merged({}, str(path)), flags)
    assert flags.control == "/run/x.sock"  # the command line wins
    path.write_text('server = "192.0.2.1:4433"\ncontrol_interval = "fast"\n')
    with pytest.raises(BondConfigError) as info:
        take_control_keys(merged({}, str(path)), args)
    assert info.value.key == "control_interval"

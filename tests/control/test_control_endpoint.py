"""A server's endpoint defences on its control plane (issue 19: every bound a peer can hit
has a counter an operator can see): ``GET /status`` carries an ``endpoint`` object and
``/metrics`` the ``tquic_endpoint_*`` series, with the endpoint's own values; a daemon
without an endpoint (a bond client) exports none of them; a bond server with workers
shows their endpoints added up."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from control_running import RunningPlane

import tquic
from tquic.control.client import ControlClient
from tquic.control.model import EndpointInfo
from tquic.control.render import status_text
from tquic.core.config import QuicConfiguration
from tquic.io.endpoint_stats import EndpointStats

parser = pytest.importorskip("prometheus_client.parser",
                             reason="prometheus-client is not installed")
pytestmark = pytest.mark.timeout(60)
EVENTS = {f.name for f in dataclasses.fields(EndpointStats)}


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def values(family: Any, label: str | None = None) -> dict[str, float]:
    """A family's samples by label value (or the one unlabelled sample under "")."""
    return {(s.labels[label] if label else ""): float(s.value) for s in family.samples
            if not s.name.endswith("_created")}


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_a_server_that_sent_a_retry_shows_it(tmp_path: Path) -> None:
    from tquic.control.server import start_control
    from tquic.control.server_view import ServerView
    from tquic.crypto.tls.certs import generate_self_signed

    cert, key = generate_self_signed()
    (tmp_path / "cert.pem").write_bytes(cert)
    server_config = QuicConfiguration(is_client=False, alpn_protocols=("hq-interop",),
                                      certificate=cert, private_key=key)
    client_config = QuicConfiguration(is_client=True, alpn_protocols=("hq-interop",),
                                      cafile=str(tmp_path / "cert.pem"), server_name="localhost")

    async def main() -> tuple[dict[str, Any], str, dict[str, Any]]:
        server = await tquic.serve("127.0.0.1", 0, server_config, retry="always")
        view = ServerView(server)
        # Sampled on demand only (the longest interval): /status and /metrics below read
        # the same sample, whatever the connection's last ACKs do to the counters.
        plane = await start_control(view, view, str(tmp_path / "server.sock"), interval=60)
        api = ControlClient(plane.address)

        async def get(path: str) -> Any:
            return await asyncio.to_thread(api.get, path)

        try:
            async with server, tquic.connect("127.0.0.1", server.local_address[1],
                                             client_config, timeout=20):
                endpoint = server.endpoint
                # The client is connected once its handshake completes; the server counts
                # it as done when the client's Finished arrives, a moment later.
                await until(lambda: endpoint.handshakes_in_progress == 0
                            and len(endpoint.connections) == 1, "the server's handshake")
                await plane.sampler.sample_now()
                status = await get("/status")
                text = await get("/metrics")
                stats = dataclasses.asdict(endpoint.stats)
                stats["kernel_filter"] = endpoint.kernel_filter_active  # root and CAP_BPF
        finally:
            await plane.close()
        return status, text, stats

    status, text, stats = asyncio.run(asyncio.wait_for(main(), 40))
    assert stats["retries_sent"] >= 1 and stats["connections_accepted"] == 1
    # JSON: the endpoint object is the endpoint's own state and counters, every one of them.
    endpoint = status["endpoint"]
    assert endpoint["retry_active"] is True
    assert endpoint["handshakes_in_progress"] == 0 and endpoint["connections"] == 1
    assert set(endpoint["events"]) == EVENTS
    for name in ("retries_sent", "connections_accepted", "connections_refused",
                 "peers_blocked", "initials_undecryptable"):
        assert endpoint["events"][name] == stats[name], name
    assert endpoint["events"]["datagrams_received"] >= 2  # the Initial twice: before/after Retry
    # Prometheus: one counter family with an event label per counter, and the gauges.
    scraped = families(text)
    events = values(scraped["tquic_endpoint_events"], "event")
    assert set(events) == EVENTS
    assert events == {name: float(count) for name, count in endpoint["events"].items()}
    assert events["retries_sent"] >= 1
    assert values(scraped["tquic_endpoint_retry_active"]) == {"": 1.0}
    assert values(scraped["tquic_endpoint_handshakes_in_progress"]) == {"": 0.0}
    assert values(scraped["tquic_endpoint_connections"]) == {"": 1.0}
    assert endpoint["kernel_filter"] is stats["kernel_filter"]
    assert values(scraped["tquic_endpoint_kernel_filter_active"]) == {
        "": float(stats["kernel_filter"])}


def test_a_bond_client_exports_no_endpoint(unix_plane: RunningPlane) -> None:
    api = ControlClient(unix_plane.address)
    assert api.get("/status")["endpoint"] is None
    text = api.get("/metrics")
    assert not [name for name in families(text) if name.startswith("tquic_endpoint")]
    assert "endpoint:" not in status_text(api.get("/status"), api.get("/links"))


def test_the_fake_bond_servers_endpoint_in_json_metrics_and_status_text(
        tcp_plane: RunningPlane) -> None:
    from control_running import TOKEN

    api = ControlClient(tcp_plane.address, TOKEN)
    status = api.get("/status")
    assert status["endpoint"] == {
        "retry_active": True, "handshakes_in_progress": 3, "connections": 2,
        "kernel_filter": True,
        "events": {"datagrams_received": 5000, "datagrams_dropped": 1200,
                   "retries_sent": 340, "peers_blocked": 7}}
    scraped = families(api.get("/metrics"))
    assert values(scraped["tquic_endpoint_events"], "event")["peers_blocked"] == 7
    text = status_text(status, api.get("/links"))
    assert ("endpoint: Retry on, kernel filter on, 3 handshakes in progress, "
            "2 connections") in text
    assert "peers blocked 7, datagrams dropped 1200" in text and "retries sent 340" in text


def _endpoint_status(retry: bool, handshakes: int, connections: int, **counts: int) -> Any:
    from tquic.bond.status import EndpointStatus

    return EndpointStatus(EndpointStats(**counts), retry, handshakes, connections,
                          kernel_filter=True)


class _Bond:
    def __init__(self, status: Any) -> None:
        self._status = status

    def status(self) -> Any:
        return self._status


def test_the_bond_servers_workers_are_added_up() -> None:
    """``--workers N``: the parent's status carries each worker's endpoint snapshot (sent
    pickled over the worker's channel); the view shows their sum, Retry on if any has it."""
    from tquic.bond.status import BondStatus
    from tquic.cli.bond_view import BondView

    status = BondStatus("server", 10.0, True, endpoints=(
        _endpoint_status(False, 1, 4, retries_sent=2, peers_blocked=1),
        _endpoint_status(True, 5, 6, retries_sent=30, datagrams_dropped=9)))
    status = pickle.loads(pickle.dumps(status))  # as it crosses from a worker
    info = BondView(_Bond(status)).endpoint()
    assert info == EndpointInfo(
        {**{name: 0 for name in EVENTS}, "retries_sent": 32, "peers_blocked": 1,
         "datagrams_dropped": 9}, retry_active=True, handshakes_in_progress=6, connections=10,
        kernel_filter=True)
    assert BondView(_Bond(BondStatus("client", 1.0, True))).endpoint() is None

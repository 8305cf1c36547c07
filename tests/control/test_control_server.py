"""``tquic server --control`` during a real two-path transfer (tquic server, tquic netem and
tquic client --path as processes): each path of the connection is a link, a role set
through the API is obeyed by the server's scheduler, and what a server cannot do is a 409."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_transfer import LiveTransfer, live_transfer

from tquic.control.client import ControlClient, ControlClientError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def transfer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveTransfer]:
    from tquic.cli.main import main

    certs = tmp_path_factory.mktemp("certs")
    assert main(["certs", str(certs)]) == 0
    sock = certs / "control" / "server.sock"
    with live_transfer(certs, ("--control", str(sock))) as live:
        api = ControlClient(live.control)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            links = api.get("/links")["links"]
            if len(links) == 2 and all(lk["state"] == "up" and lk["rate_up"] > 1e5
                                       for lk in links):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the transfer did not get going on two paths: {links}")
        yield live


def test_the_socket_is_0600(transfer: LiveTransfer) -> None:
    assert stat.S_IMODE(Path(transfer.control).lstat().st_mode) == 0o600


def test_each_path_of_the_connection_is_a_link(transfer: LiveTransfer) -> None:
    api = ControlClient(transfer.control)
    status = api.get("/status")
    assert status["daemon"] == "server" and status["clients"] == 1
    links = {link["name"]: link for link in api.get("/links")["links"]}
    assert set(links) == {"c1.p0", "c1.p1"}
    for link in links.values():
        assert link["client"] == "c1" and link["role"] == "primary"
        assert link["srtt"] > 0 and link["cwnd"] > 0 and link["bytes_sent"] > 0
    # netem gives path 0 (127.0.0.2) 10 ms and path 1 (127.0.0.3) 25 ms one way.
    assert links["c1.p0"]["min_rtt"] < links["c1.p1"]["min_rtt"]
    (client,) = api.get("/clients")["clients"]
    assert client["paths"] == 2 and client["alpn"] == "h3"
    settings = {s["name"]: s["value"] for s in api.get("/config")["settings"]}
    assert settings["cc"] == "bbr1" and settings["control"] == transfer.control  # the default


@pytest.mark.parametrize(("method", "path", "body", "status", "text"), [
    ("PUT", "/links/c1.p1", {"weight": 2}, 409, "no per-path weight"),
    ("PUT", "/links/c1.p1", {"role": "never"}, 409, "take it down instead"),
    ("POST", "/links/c1.p1/up", None, 409, "the client re-opens"),
    ("POST", "/reopen", None, 409, "its clients re-open them"),
    ("POST", "/reload", None, 409, "no configuration file"),
    ("PUT", "/links/c9.p0", {"role": "backup"}, 404, "no link 'c9.p0'"),
])
def test_what_a_server_cannot_do_is_refused(transfer: LiveTransfer, method: str, path: str,
                                            body: object, status: int, text: str) -> None:
    with pytest.raises(ControlClientError) as info:
        ControlClient(transfer.control).request(method, path, body)  # type: ignore[arg-type]
    assert info.value.status == status and text in info.value.message


def test_a_path_set_to_backup_stops_carrying_data_and_down_abandons_it(
        transfer: LiveTransfer) -> None:
    api = ControlClient(transfer.control)
    before = api.get("/links/c1.p1")["link"]["rate_up"]
    answer = api.request("PUT", "/links/c1.p1", {"role": "backup"})
    assert answer["link"]["role"] == "backup"  # PATH_STATUS_BACKUP sent, our status followed
    time.sleep(1.5)  # three samples
    rates = {link["name"]: link["rate_up"] for link in api.get("/links")["links"]}
    assert rates["c1.p1"] < 0.2 * before, (before, rates)
    assert rates["c1.p0"] > 1e5, rates
    api.request("PUT", "/links/c1.p1", {"role": "primary"})
    assert api.request("POST", "/links/c1.p1/down")["link"]["state"] == "abandoned"
    kinds = [e["kind"] for e in api.get("/events")["events"]]
    assert "role" in kinds and "link-down" in kinds


def test_the_last_open_path_is_never_abandoned() -> None:
    import asyncio
    from types import SimpleNamespace

    from tquic.control.model import Conflict
    from tquic.control.server_view import ServerView

    abandoned: list[int] = []
    stats = [SimpleNamespace(path_id=0, state="validated"),
             SimpleNamespace(path_id=1, state="abandoned")]
    quic = SimpleNamespace(path_stats=lambda now: stats,
                           abandon_path=lambda path_id, now: abandoned.append(path_id))
    class Proto:  # the parts of QuicConnectionProtocol the view uses
        is_closed = False
        started_at = 0.0

        def __init__(self) -> None:
            self.quic = quic

        def flush(self) -> None:
            pass

    proto = Proto()
    view = ServerView(SimpleNamespace(connections={proto}))

    async def down(name: str) -> str:
        try:
            await view.link_down(name)
        except Conflict as exc:
            return exc.message
        return "done"

    assert "last open path" in asyncio.run(down("c1.p0"))
    assert "already abandoned" in asyncio.run(down("c1.p1"))
    assert abandoned == []

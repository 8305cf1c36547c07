"""The control API against a running listener: every read, every write, bad writes,
unauthorised callers, the Unix socket's permissions, the bounds on connections."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from control_running import TOKEN, RunningPlane, raw_exchange
from fake_daemon import FakeDaemon

from tquic.control.client import ControlClient, ControlClientError
from tquic.control.server import parse_control_target, start_control

pytestmark = pytest.mark.timeout(60)


def request(address: str, method: str, path: str, body: object = None, *,
            ctype: str = "application/json", headers: dict[str, str] | None = None,
            ) -> tuple[int, dict[str, str], Any]:
    payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(
        body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(payload)}"]
    if payload or method in ("POST", "PUT"):
        lines.append(f"Content-Type: {ctype}")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    status, head, raw = raw_exchange(address, ("\r\n".join(lines) + "\r\n\r\n").encode()
                                     + payload)
    value = json.loads(raw) if raw and head.get("content-type") == "application/json" else raw
    return status, head, value


# -- the Unix socket ------------------------------------------------------------------------


def test_the_unix_socket_is_0600_and_gone_after_close(tmp_path: Path) -> None:
    path = tmp_path / "ctl" / "bond.sock"
    plane = RunningPlane(FakeDaemon(), str(path), None, 0.2)
    try:
        mode = path.lstat().st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
    finally:
        plane.close()
    assert not path.exists()


def test_a_live_socket_or_another_file_is_never_replaced_but_a_stale_socket_is(
        unix_plane: RunningPlane, tmp_path: Path) -> None:
    async def start(target: str) -> None:
        plane = await start_control(FakeDaemon(), None, target)
        await plane.close()

    with pytest.raises(OSError, match="another daemon is listening"):
        asyncio.run(start(unix_plane.address))
    assert request(unix_plane.address, "GET", "/status")[0] == 200  # still serving
    regular = tmp_path / "file.sock"
    regular.write_text("keep me")
    with pytest.raises(OSError, match="not a socket"):
        asyncio.run(start(str(regular)))
    assert regular.read_text() == "keep me"
    stale = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(stale))
    dead.close()  # bound, never listening: a crashed daemon's leftover
    asyncio.run(start(str(stale)))
    assert not stale.exists()


def test_every_read_answers_json(unix_plane: RunningPlane) -> None:
    client = ControlClient(unix_plane.address)
    status = client.get("/status")
    assert status["daemon"] == "bond client"
    assert status["links"] == 3 and status["links_up"] == 3
    assert status["uptime"] >= 3725 and status["tunnel_address"] == ["10.8.0.2"]
    links = client.get("/links")
    assert [link["name"] for link in links["links"]] == ["lte", "dsl", "sat"]
    lte = links["links"][0]
    for key in ("state", "role", "weight", "srtt", "min_rtt", "cwnd", "bytes_sent",
                "bytes_received", "packets_lost", "ecn", "data_used", "data_cap", "rate_up",
                "rate_down", "share", "loss", "demoted", "interface"):
        assert key in lte, key
    assert lte["data_cap"] == {"limit": 10**10, "period": "month", "text": "10GB/month"}
    one = client.get("/links/dsl")
    assert one["link"]["name"] == "dsl" and one["link"]["interface"] == "eth1"
    tunnel = client.get("/tunnel")["tunnel"]
    assert tunnel["drops"]["no_route"] == 3
    assert tunnel["reorder"]["delay_p50"] == 0.001 and tunnel["reorder"]["delay_p99"] is None
    assert client.get("/clients") == {"seq": client.get("/clients")["seq"], "clients": []}
    settings = {s["name"]: s for s in client.get("/config")["settings"]}
    assert settings["scheduler"]["value"] == "minrtt" and settings["scheduler"]["runtime"]
    assert not settings["listen"]["runtime"]
    assert client.get("/events") == {"events": []}
    time.sleep(0.5)
    history = client.get("/history")
    assert history["interval"] == 0.2 and len(history["samples"]) >= 2
    assert set(history["samples"][-1]["links"]) == {"lte", "dsl", "sat"}


def test_rates_and_shares_come_from_successive_samples(unix_plane: RunningPlane) -> None:
    time.sleep(0.5)
    links = {link["name"]: link for link in ControlClient(unix_plane.address).get(
        "/links")["links"]}
    # The fake moves lte and dsl (primary) and leaves sat (backup) idle.
    assert links["dsl"]["rate_down"] > links["lte"]["rate_down"] > 0
    assert links["sat"]["rate_down"] == 0 and links["sat"]["share"] == 0
    assert links["dsl"]["share"] + links["lte"]["share"] == pytest.approx(1.0)


def test_setting_role_weight_and_cap_is_obeyed_and_logged(unix_plane: RunningPlane) -> None:
    client = ControlClient(unix_plane.address)
    answer = client.request("PUT", "/links/lte", {"role": "backup", "weight": 2.5,
                                                  "cap": "500MB/day"})
    assert answer["ok"] is True
    assert answer["link"]["role"] == "backup" and answer["link"]["weight"] == 2.5
    assert answer["link"]["data_cap"]["text"] == "500MB/day"
    daemon_link = next(lk for lk in unix_plane.daemon.links() if lk.name == "lte")
    assert (daemon_link.role, daemon_link.weight) == ("backup", 2.5)
    assert daemon_link.data_cap is not None and daemon_link.data_cap.limit == 500 * 10**6
    assert client.request("POST", "/links/lte", {"cap": "unlimited"})["link"]["data_cap"] is None
    kinds = [(e["kind"], e["message"]) for e in client.get("/events")["events"]]
    assert ("api", "lte: set role backup, weight 2.5, cap 500MB/day (API)") in kinds
    assert ("role", "lte: role primary -> backup") in kinds


def test_a_link_goes_down_and_up_and_twice_is_a_conflict(unix_plane: RunningPlane) -> None:
    client = ControlClient(unix_plane.address)
    assert client.request("POST", "/links/sat/down")["link"]["state"] == "down"
    with pytest.raises(ControlClientError) as info:
        client.request("POST", "/links/sat/down")
    assert info.value.status == 409 and "already down" in info.value.message
    assert client.get("/status")["links_up"] == 2
    assert client.request("POST", "/links/sat/up")["link"]["state"] == "up"
    kinds = [e["kind"] for e in client.get("/events")["events"]]
    assert "link-down" in kinds and "link-up" in kinds


def test_reopen_and_reload_reach_the_daemon(unix_plane: RunningPlane) -> None:
    client = ControlClient(unix_plane.address)
    assert client.request("POST", "/reopen")["ok"]
    assert client.request("POST", "/reopen", {"link": "lte"})["ok"]
    assert client.request("POST", "/reload")["ok"]
    assert unix_plane.daemon.reopened == [None, "lte"]
    assert unix_plane.daemon.reloads == 1


def test_head_answers_the_head_only(unix_plane: RunningPlane) -> None:
    status, head, body = request(unix_plane.address, "HEAD", "/status")
    assert status == 200 and int(head["content-length"]) > 0 and body == b""


BAD_WRITES = [
    ("PUT", "/links/lte", {"role": "sometimes"}, 422, "role must be one of"),
    ("PUT", "/links/lte", {"weight": 0}, 422, "weight must be above 0"),
    ("PUT", "/links/lte", {"weight": "2"}, 422, "weight must be a number"),
    ("PUT", "/links/lte", {"weight": True}, 422, "weight must be a number"),
    ("PUT", "/links/lte", {"cap": "lots"}, 422, "is not an amount"),
    ("PUT", "/links/lte", {"cap": "5GB/year"}, 422, "period 'year'"),
    ("PUT", "/links/lte", {"cap": 5}, 422, "cap must be a string"),
    ("PUT", "/links/lte", {"colour": "red"}, 422, "unknown key 'colour'"),
    ("PUT", "/links/lte", {}, 400, "nothing to change"),
    ("PUT", "/links/lte", b"{role: backup}", 400, "not valid JSON"),
    ("PUT", "/links/lte", [1, 2], 400, "must be a JSON object"),
    ("PUT", "/links/nope", {"role": "backup"}, 404, "no link 'nope'; links: lte, dsl, sat"),
    ("POST", "/links/nope/down", None, 404, "no link 'nope'"),
    ("POST", "/links/lte/down", {"now": True}, 422, "unknown key 'now'"),
    ("POST", "/reopen", {"link": 3}, 422, "link must be a link name"),
    ("POST", "/reopen", {"link": "nope"}, 404, "no link 'nope'"),
    ("POST", "/reload", {"force": 1}, 422, "unknown key 'force'"),
    ("DELETE", "/links/lte", None, 405, "DELETE is not allowed"),
    ("POST", "/status", None, 405, "POST is not allowed here"),
    ("GET", "/links/lte/down", None, 405, "GET is not allowed"),
    ("GET", "/nowhere", None, 404, "no such endpoint /nowhere"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), BAD_WRITES)
def test_a_bad_request_gets_a_clear_json_error_and_changes_nothing(
        unix_plane: RunningPlane, method: str, path: str, body: object, status: int,
        message: str) -> None:
    before = [(lk.name, lk.state, lk.role, lk.weight, lk.data_cap)
              for lk in unix_plane.daemon.links()]
    got, _, answer = request(unix_plane.address, method, path, body)
    assert got == status
    assert answer["status"] == status and message in answer["error"], answer
    after = [(lk.name, lk.state, lk.role, lk.weight, lk.data_cap)
             for lk in unix_plane.daemon.links()]
    assert after == before
    assert unix_plane.daemon.reopened == [] and unix_plane.daemon.reloads == 0


def test_a_body_that_is_not_declared_json_is_refused(unix_plane: RunningPlane) -> None:
    status, _, answer = request(unix_plane.address, "PUT", "/links/lte", {"role": "backup"},
                                ctype="text/plain")
    assert status == 415 and "application/json" in answer["error"]


def test_a_write_without_a_json_content_type_is_refused_even_without_a_body(
        unix_plane: RunningPlane) -> None:
    # What a form or a no-preflight fetch of another web page could send (a CSRF).
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):
        status, _, answer = request(unix_plane.address, "POST", "/links/lte/down", ctype=ctype)
        assert status == 415 and "application/json" in answer["error"]
    assert all(lk.state == "up" for lk in unix_plane.daemon.links())


@pytest.mark.parametrize(("headers", "status"), [
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "http://localhost"}, 200),  # the listener itself (Host: localhost)
    ({"Sec-Fetch-Site": "same-origin", "Host": "rebound.evil.example:9180"}, 403),
    ({"Sec-Fetch-Site": "same-origin", "Host": "127.0.0.1:9180"}, 200),
    ({"Host": "any.name"}, 200),  # curl --unix-socket http://any.name/…: not a browser
])
def test_browser_requests_from_other_sites_are_refused(unix_plane: RunningPlane,
                                                       headers: dict[str, str],
                                                       status: int) -> None:
    host = headers.pop("Host", "localhost")
    lines = ["PUT /links/lte HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
             "Content-Length: 17", *(f"{k}: {v}" for k, v in headers.items())]
    got, _, _ = raw_exchange(unix_plane.address,
                             ("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"role":"backup"}')
    assert got == status
    role = next(lk.role for lk in unix_plane.daemon.links() if lk.name == "lte")
    assert role == ("backup" if status == 200 else "primary")


def test_malformed_http_is_answered_not_dropped(unix_plane: RunningPlane) -> None:
    status, _, body = raw_exchange(unix_plane.address, b"GET /status HTTP/1.1\r\n\r\n")
    assert status == 400 and b"Host" in body
    status, _, _ = raw_exchange(unix_plane.address, b"GET /status HTTP/3.0\r\nHost: x\r\n\r\n")
    assert status == 505


def test_a_client_that_never_finishes_its_request_is_timed_out(
        unix_plane: RunningPlane) -> None:
    unix_plane.plane.read_timeout = 0.3
    started = time.monotonic()
    status, _, _ = raw_exchange(unix_plane.address, b"GET /status HTTP/1.1\r\nHo")
    assert status == 408 and time.monotonic() - started < 3


def test_connections_beyond_the_bound_are_refused(unix_plane: RunningPlane) -> None:
    unix_plane.plane.max_connections = 2
    idle = []
    try:
        for _ in range(2):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(unix_plane.address)
            sock.sendall(b"GET /status HTTP/1.1\r\n")  # holds its slot, unfinished
            idle.append(sock)
        time.sleep(0.2)
        status, _, body = raw_exchange(unix_plane.address,
                                       b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and b"too many" in body
    finally:
        for sock in idle:
            sock.close()


def test_the_live_stream_sends_a_sample_per_interval(unix_plane: RunningPlane) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    with sock:
        sock.connect(unix_plane.address)
        sock.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"event: sample") < 3 and time.monotonic() < deadline:
            data += sock.recv(65536)
    head, _, stream = data.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"text/event-stream" in head
    samples = [json.loads(block.split(b"data: ", 1)[1]) for block in stream.split(b"\n\n")
               if block.startswith(b"event: sample")]
    assert len(samples) >= 3
    seqs = [s["seq"] for s in samples]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {link["name"] for link in samples[-1]["links"]} == {"lte", "dsl", "sat"}


# -- TCP with a token ------------------------------------------------------------------------


def test_tcp_needs_a_long_token() -> None:
    async def start(token: str | None) -> None:
        plane = await start_control(FakeDaemon(), None, "127.0.0.1:0", token=token)
        await plane.close()

    with pytest.raises(ValueError, match="needs --control-token"):
        asyncio.run(start(None))
    with pytest.raises(ValueError, match="at least 16"):
        asyncio.run(start("short"))


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/status", None), ("GET", "/links", None), ("GET", "/links/lte", None),
    ("GET", "/tunnel", None), ("GET", "/clients", None), ("GET", "/config", None),
    ("GET", "/metrics", None), ("GET", "/live", None), ("GET", "/history", None),
    ("PUT", "/links/lte", {"role": "never"}), ("POST", "/links/lte/down", None),
    ("POST", "/reopen", None), ("POST", "/reload", None), ("PUT", "/links/nope", {"x": 1}),
])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-of-some-length", f"Basic {TOKEN}",
                                  f"Bearer {TOKEN}x"])
def test_unauthorised_callers_get_401_and_change_nothing(
        tcp_plane: RunningPlane, method: str, path: str, body: object, auth: str | None) -> None:
    before = [(lk.name, lk.state, lk.role) for lk in tcp_plane.daemon.links()]
    events = len(tcp_plane.plane.sampler.events)
    status, head, answer = request(tcp_plane.address, method, path, body,
                                   headers={"Authorization": auth} if auth else None)
    assert status == 401 and head["www-authenticate"].startswith("Bearer")
    assert "unauthorised" in answer["error"]
    assert [(lk.name, lk.state, lk.role) for lk in tcp_plane.daemon.links()] == before
    assert tcp_plane.daemon.reopened == [] and tcp_plane.daemon.reloads == 0
    assert len(tcp_plane.plane.sampler.events) == events


def test_the_right_token_reads_and_writes(tcp_plane: RunningPlane) -> None:
    client = ControlClient(f"http://{tcp_plane.address}/", token=TOKEN)
    assert client.get("/status")["daemon"] == "bond server"
    assert [c["name"] for c in client.get("/clients")["clients"]] == ["site0", "site1"]
    assert client.request("PUT", "/links/dsl", {"role": "backup"})["link"]["role"] == "backup"
    with pytest.raises(ControlClientError) as info:
        ControlClient(tcp_plane.address).get("/status")
    assert info.value.status == 401 and "--control-token" in info.value.message


def test_the_dashboard_login_sets_a_strict_cookie_that_then_authorises(
        tcp_plane: RunningPlane) -> None:
    status, head, _ = request(tcp_plane.address, "GET", "/?token=wrong-token-0123456789")
    assert status == 401 and "set-cookie" not in head
    status, _, page = request(tcp_plane.address, "GET", "/")
    assert status == 401 and b"Token needed" in page
    status, head, _ = request(tcp_plane.address, "GET", f"/?token={TOKEN}")
    assert status == 302 and head["location"] == "/"
    cookie = head["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    status, head, page = request(tcp_plane.address, "GET", "/", headers=jar)
    assert status == 200 and b"<canvas id=\"chart\">" in page
    assert "default-src 'none'" in head["content-security-policy"]
    status, _, answer = request(tcp_plane.address, "PUT", "/links/sat", {"role": "never"},
                                headers=jar)
    assert status == 200 and answer["link"]["role"] == "never"


@pytest.mark.parametrize(("text", "expected"), [
    ("/run/tquic/bond.sock", ("/run/tquic/bond.sock", None, 0)),
    ("bond.sock", ("bond.sock", None, 0)),
    ("127.0.0.1:9180", (None, "127.0.0.1", 9180)),
    ("[::1]:9180", (None, "::1", 9180)),
    ("localhost:80", (None, "localhost", 80)),
])
def test_control_targets_parse(text: str, expected: tuple[str | None, str | None, int]) -> None:
    target = parse_control_target(text)
    assert (target.path, target.host, target.port) == expected


@pytest.mark.parametrize("text", ["", "9180", "127.0.0.1:99999",
                                  "example.com:80", "/" + "x" * 200])
def test_bad_control_targets_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError):
        parse_control_target(text)


def test_the_client_says_what_to_do_when_nothing_listens(tmp_path: Path) -> None:
    with pytest.raises(ControlClientError, match="is the daemon running"):
        ControlClient(str(tmp_path / "none.sock")).get("/status")
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    with pytest.raises(ControlClientError, match="nothing listens"):
        ControlClient(f"127.0.0.1:{port}").get("/status")


def test_a_daemons_default_socket_is_a_warning_when_taken_an_explicit_one_an_error(
        unix_plane: RunningPlane, caplog: pytest.LogCaptureFixture) -> None:
    import argparse

    from tquic.control.options import ControlStartError, control_for

    def args(control: str | None) -> argparse.Namespace:
        return argparse.Namespace(control=control, control_token=None, control_interval=1.0)

    async def run(control: str | None) -> object:
        daemon = FakeDaemon()
        async with control_for(args(control), daemon, daemon, "tquic test",
                               default=unix_plane.address) as plane:
            return plane

    assert asyncio.run(run(None)) is None  # the default is taken: go on without
    assert "control API not started" in caplog.text
    with pytest.raises(ControlStartError, match="another daemon is listening"):
        asyncio.run(run(unix_plane.address))
    assert asyncio.run(run("none")) is None
    assert request(unix_plane.address, "GET", "/status")[0] == 200  # untouched

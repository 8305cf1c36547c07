"""The bond with real programs, in network namespaces (root only; skipped with the reason).

A site namespace with two tbf-shaped veth links (20 and 10 Mbit/s) to the bond
server's namespace, and an "internet" namespace behind the server (NAT'd by
``--nat``).  Real iperf3 and curl run through the site's TUN; a link is taken
down and up mid-transfer; a second site runs at the same time; a bad token is
refused; a spoofed source is dropped; IPv6 (an fd99::/64 pool) crosses the tunnel
at 1280 bytes and more once PMTUD lifted the tunnel MTU; and after SIGTERM no
interface, route or nftables table is left behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tquic.testing.bond_lab import INTERNET, INTERNET2, INTERNET6, POOL6, TOKEN2, BondLab
from tquic.testing.netns import LinkSpec, tquic_argv, unavailable_reason

pytestmark = pytest.mark.timeout(150)


def _skip_reason() -> str | None:
    reason = unavailable_reason()
    if reason is not None:
        return reason
    for tool in ("iperf3", "curl", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {tool if tool != 'nft' else 'nftables'})"
    if not Path("/dev/net/tun").exists():
        return "/dev/net/tun is missing (no TUN support)"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BondLab]:
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("bondlab")
    with BondLab([LinkSpec(20), LinkSpec(10)], workdir) as lab:
        (workdir / "www").mkdir()
        (workdir / "www" / "blob").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
        lab.spawn(lab.internet_ns, [sys.executable, "-m", "http.server", "--bind", "0.0.0.0",
                                    "--directory", str(workdir / "www"), "8080"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lab.spawn(lab.internet_ns, [sys.executable, "-m", "http.server", "--bind", INTERNET6,
                                    "--directory", str(workdir / "www"), "8081"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lab.server = lab.start_server("--pool", POOL6)  # type: ignore[attr-defined]
        assert lab.wait_for(workdir / "server.log", "server listening", 20), \
            (workdir / "server.log").read_text()
        lab.client = lab.start_client(  # type: ignore[attr-defined]
            routes=("10.88.0.0/24", "fd88::/64"))
        log = workdir / "client-bond0.log"
        assert lab.wait_for(log, "tunnel up", 20), log.read_text()
        assert lab.wait_for(log, "link wan2 (%wan2): up", 10), log.read_text()
        yield lab


def _iperf(lab: BondLab, *args: str, seconds: int = 3) -> dict[str, object]:
    server = lab.spawn(lab.internet_ns, ["iperf3", "-s", "-1", "-B", INTERNET],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    result = lab.run(lab.site_ns, ["iperf3", "-c", INTERNET, "-t", str(seconds), "-J", *args],
                     timeout=seconds + 20)
    server.wait(timeout=10)
    data: dict[str, object] = json.loads(result.stdout)
    assert "error" not in data, data.get("error")
    return data


def _mbit(value: object) -> float:
    return float(value) / 1e6  # type: ignore[arg-type]


def test_curl_through_the_tun_gets_the_whole_file(lab: BondLab) -> None:
    out = lab.workdir / "curl.out"
    result = lab.run(lab.site_ns, ["curl", "-sS", "--max-time", "20", "-o", str(out),
                                   f"http://{INTERNET}:8080/blob"], timeout=30)
    assert result.returncode == 0, result.stderr
    expected = (lab.workdir / "www" / "blob").read_bytes()
    body = out.read_bytes()
    assert len(body) == len(expected) == 2 << 20
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()


def test_iperf3_tcp_single_flow_and_four_flows(lab: BondLab) -> None:
    one = _iperf(lab, "-R")
    end = one["end"]  # type: ignore[index]
    received = end["sum_received"]["bytes"]  # type: ignore[index]
    sent = end["sum_sent"]["bytes"]  # type: ignore[index]
    assert received > 0 and received <= sent
    # The best link alone carries ~17.7 Mbit/s of iperf3 payload; demand a real transfer.
    assert _mbit(end["sum_received"]["bits_per_second"]) > 8.0  # type: ignore[index]
    four = _iperf(lab, "-R", "-P", "4")
    assert four["end"]["sum_received"]["bytes"] > 0  # type: ignore[index]
    assert len(four["end"]["streams"]) == 4  # type: ignore[index]


def test_iperf3_udp_is_delivered(lab: BondLab) -> None:
    data = _iperf(lab, "-u", "-b", "8M", "-R")
    summary = data["end"]["sum"]  # type: ignore[index]
    assert summary["packets"] > 1000  # type: ignore[index]
    assert summary["lost_percent"] < 5.0, summary  # type: ignore[index]


def test_a_link_down_and_up_mid_transfer(lab: BondLab) -> None:
    log = lab.workdir / "client-bond0.log"

    def cut() -> None:
        time.sleep(1.5)
        lab.topology.set_link(1, False)
        time.sleep(2.0)
        lab.topology.set_link(1, True)

    cutter = threading.Thread(target=cut)
    cutter.start()
    data = _iperf(lab, "-R", seconds=7)
    cutter.join()
    intervals = data["intervals"]  # type: ignore[index]
    assert data["end"]["sum_received"]["bytes"] > 0  # type: ignore[index]
    # The transfer kept going while link 1 was down (the second link carried it).
    rates = [_mbit(i["sum"]["bits_per_second"]) for i in intervals]  # type: ignore[index]
    assert sum(1 for r in rates[2:4] if r > 1.0) >= 1, rates
    assert lab.wait_for(log, "link wan1 (%wan1): up", 15), log.read_text()[-2000:]


def test_a_second_site_at_the_same_time(lab: BondLab) -> None:
    second = lab.start_client(links=("%wan2",), tun="bond1", routes=(f"{INTERNET2}/32",),
                              token=TOKEN2)
    log = lab.workdir / "client-bond1.log"
    try:
        assert lab.wait_for(log, "tunnel up", 20), log.read_text()
        text = log.read_text()
        assert "10.99.0." in text and "10.99.0.2/32" not in text  # its own address
        result = lab.run(lab.site_ns, ["curl", "-sS", "--max-time", "20", "-o", "/dev/null",
                                       "-w", "%{size_download}",
                                       f"http://{INTERNET2}:8080/blob"], timeout=30)
        # INTERNET2 is routed through bond1, INTERNET through bond0: both tunnels at once.
        assert result.returncode == 0 and int(result.stdout) == 2 << 20, result.stderr
        first = lab.run(lab.site_ns, ["curl", "-sS", "--max-time", "20", "-o", "/dev/null",
                                      "-w", "%{size_download}",
                                      f"http://{INTERNET}:8080/blob"], timeout=30)
        assert first.returncode == 0 and int(first.stdout) == 2 << 20
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)
    assert "tun bond1 removed" in log.read_text()


def test_a_wrong_token_is_refused(lab: BondLab) -> None:
    result = lab.run(lab.site_ns, tquic_argv(
        "bond", "client", "--server", "10.77.1.2:4433", "--insecure", "--token", "guess",
        "--link", "%wan1", "--tun", "bondx", "--state-dir", str(lab.workdir / "x")), timeout=30)
    assert result.returncode == 3
    assert "403" in result.stderr
    assert lab.run(lab.site_ns, ["ip", "link", "show", "bondx"], timeout=5).returncode != 0


_SEND_SPOOFED = """
import socket, sys
for src, payload in (("10.99.0.200", b"spoofed"), (sys.argv[1], b"honest")):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 25, b"bond0")
    s.bind((src, 0))
    s.sendto(payload, (sys.argv[2], 9999))
"""

_RECEIVE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9999))
s.settimeout(3)
try:
    while True:
        print(s.recv(100).decode(), flush=True)
except OSError:
    pass
"""


def test_a_spoofed_source_is_dropped(lab: BondLab) -> None:
    show = lab.run(lab.site_ns, ["ip", "-j", "addr", "show", "bond0"], timeout=5)
    own = next(a["local"] for a in json.loads(show.stdout)[0]["addr_info"]
               if a["family"] == "inet")
    # A second address on bond0 lets the site's kernel send from it; the server must not.
    lab.run(lab.site_ns, ["ip", "addr", "add", "10.99.0.200/32", "dev", "bond0"], timeout=5)
    receiver = lab.spawn(lab.internet_ns, [sys.executable, "-c", _RECEIVE, INTERNET],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    lab.run(lab.site_ns, [sys.executable, "-c", _SEND_SPOOFED, own, INTERNET], timeout=10)
    out, _ = receiver.communicate(timeout=10)
    lab.run(lab.site_ns, ["ip", "addr", "del", "10.99.0.200/32", "dev", "bond0"], timeout=5)
    assert out.decode().split() == ["honest"]


_PING6 = """
import socket, struct, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(1.0)
for size in map(int, sys.argv[2:]):
    payload = bytes(i % 251 for i in range(size))
    answered = False
    for seq in range(5):  # the kernel fills in the ICMPv6 checksum (RFC 4443 2.3)
        s.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x7171, seq) + payload, (sys.argv[1], 0))
        deadline = time.monotonic() + 1.0
        while not answered and time.monotonic() < deadline:
            try:
                data = s.recv(4096)
            except socket.timeout:
                break
            answered = (data[0] == 129 and data[4:8] == struct.pack("!HH", 0x7171, seq)
                        and data[8:] == payload)
        if answered:
            break
    print(size, "ok" if answered else "lost", flush=True)
"""


def test_ipv6_crosses_the_tunnel_at_1280_bytes_and_more(lab: BondLab) -> None:
    """RFC 9484 §10.2: an IPv6 tunnel link carries 1280-byte packets.  The paths' PMTUD
    lifted the tunnel MTU above 1280, so the TUN has its IPv6 address and route; an
    ICMPv6 echo of exactly 1280 bytes (1232 of data) and a larger one come back, and
    curl -6 fetches a file whole over TCP with full-size segments."""
    deadline = time.monotonic() + 15  # PMTUD may still be lifting the MTU (loaded host)
    while True:
        link = json.loads(lab.run(lab.site_ns, ["ip", "-j", "link", "show", "bond0"],
                                  timeout=5).stdout)[0]
        show = lab.run(lab.site_ns, ["ip", "-j", "-6", "addr", "show", "bond0"], timeout=5)
        info = json.loads(show.stdout or "[{}]")
        own6 = [a["local"] for a in (info[0].get("addr_info", []) if info else [])
                if a.get("scope") == "global"]
        if (link["mtu"] >= 1280 and own6) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert link["mtu"] >= 1280, link
    assert own6 and own6[0].startswith("fd99:"), show.stdout
    ping = lab.run(lab.site_ns, [sys.executable, "-c", _PING6, INTERNET6, "1232",
                                 str(link["mtu"] - 48)], timeout=30)
    assert ping.stdout.split() == ["1232", "ok", str(link["mtu"] - 48), "ok"], (
        ping.stdout, ping.stderr)
    out = lab.workdir / "curl6.out"
    result = lab.run(lab.site_ns, ["curl", "-6", "-g", "-sS", "--max-time", "20", "-o",
                                   str(out), f"http://[{INTERNET6}]:8081/blob"], timeout=30)
    assert result.returncode == 0, result.stderr
    expected = (lab.workdir / "www" / "blob").read_bytes()
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(expected).digest()


def test_a_dead_first_link_does_not_stop_the_tunnel_and_joins_when_back(lab: BondLab) -> None:
    """No master link: with link 1 down at start the handshake race is won by link 2;
    when link 1 comes up (netlink event) it joins the same connection."""
    lab.topology.set_link(1, False)
    log = lab.workdir / "client-bond2.log"
    late = lab.start_client(tun="bond2", token=TOKEN2, routes=())
    try:
        assert lab.wait_for(log, "tunnel up", 20), log.read_text()
        assert "over link wan2" in log.read_text()
        lab.topology.set_link(1, True)
        assert lab.wait_for(log, "link wan1 (%wan1): up", 15), log.read_text()
        assert log.read_text().count("connected to") == 1  # joined, not reconnected
    finally:
        lab.topology.set_link(1, True)
        late.send_signal(signal.SIGTERM)
        late.wait(timeout=10)


def test_zz_sigterm_leaves_nothing_behind(lab: BondLab) -> None:
    """Last (zz): stops both daemons and checks the namespaces are as they were."""
    client, server = lab.client, lab.server  # type: ignore[attr-defined]
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=15) == 0
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    assert lab.run(lab.site_ns, ["ip", "link", "show", "bond0"], timeout=5).returncode != 0
    routes = lab.run(lab.site_ns, ["ip", "route"], timeout=5).stdout
    assert "10.88.0.0" not in routes and "bond" not in routes
    assert lab.run(lab.server_ns, ["ip", "link", "show", "bondsrv0"], timeout=5).returncode != 0
    tables = lab.run(lab.server_ns, ["nft", "list", "tables"], timeout=5).stdout
    assert "tquic_bond" not in tables
    forwarding = lab.run(lab.server_ns, ["cat", "/proc/sys/net/ipv4/ip_forward"], timeout=5)
    assert forwarding.stdout.strip() == "0"

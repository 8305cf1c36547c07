"""Bonded downloads over real kernel links: ``tquic server`` and ``tquic client`` in namespaces.

A :class:`BondingLab` runs ``tquic server`` in the server namespace of a
:class:`~tquic.testing.netns.Topology`, serving one random file, and
downloads it with ``tquic client`` from the client namespace over the links
you name, one ``--path 10.77.k.1%wan{k}`` per link (the path pinned to its
interface with SO_BINDTODEVICE, as on a real multi-WAN host).  It can take a
link down (``ip link set wan{k} down``) once part of the file has arrived.

What a :class:`Transfer` reports, and where it comes from:

- goodput: ``tquic client --json`` (first request to last byte);
- integrity: the SHA-256 of what arrived against the file's;
- bytes per path: the client's ``path_stats`` (``--json`` "paths");
- bytes per link: the client interfaces' kernel counters, the proof that the
  packets really went through each veth;
- the longest delivery stall: from the client's qlog, the longest time the
  in-order end of the stream did not move (what an application waits),
  counted from its first byte to the last.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tquic.testing.netns import LinkSpec, Topology, tquic_argv

__all__ = ["BondingLab", "Stall", "Transfer", "delivery_stall"]

PORT = 4433
_READY_TIMEOUT = 20.0  # seconds for the server to say it listens (a loaded machine)
_POLL = 0.02  # seconds between interface-counter reads while waiting to cut a link


@dataclass(frozen=True, slots=True)
class Stall:
    """The longest time the in-order end of the received stream stood still."""

    seconds: float
    at: float  # when it began, seconds after the first byte


@dataclass(frozen=True, slots=True)
class Transfer:
    """One download: what arrived, how fast, over which paths and links."""

    links: tuple[int, ...]  # the link indexes used, path 0 first
    scheduler: str
    bytes: int
    seconds: float
    mbps: float
    intact: bool  # every byte arrived and the SHA-256 matches
    error: str | None
    path_bytes: tuple[tuple[int, int], ...]  # (path ID, bytes received) per path still known
    link_bytes: tuple[int, ...]  # bytes the client's interface of each used link received
    stall: Stall | None  # None without a qlog
    down_link: int | None = None
    down_at: float | None = None  # seconds after the first byte
    report: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # With ``up_after``: the bytes each used link's client interface received after the
    # down link came back up (None: it did not come back before the transfer ended).
    link_bytes_after_up: tuple[int, ...] | None = None
    stderr: str = field(default="", compare=False, repr=False)  # what the client printed there


def delivery_stall(events: Iterable[dict[str, Any]], *, stream_id: int = 0,
                   since: float = 0.0) -> Stall | None:
    """The longest gap between advances of a stream's in-order offset, from a client qlog.

    ``events`` are qlog events (``quic:packet_received`` with ``stream`` frames;
    times in milliseconds).  Gaps are measured from the first byte on (the
    handshake is not a stall); ``since`` (seconds after the first byte) only
    counts gaps that end after it.  None when no data of the stream arrived.
    """
    frontier = 0
    pending: list[tuple[int, int]] = []  # (offset, end) heap of out-of-order pieces
    first: float | None = None
    last_advance = 0.0
    best: tuple[float, float] | None = None
    for event in events:
        if event.get("name") not in ("quic:packet_received", "transport:packet_received"):
            continue
        now = float(event.get("time", 0.0)) / 1000.0
        advanced = False
        for frame in event.get("data", {}).get("frames", ()):
            if frame.get("frame_type") != "stream" or frame.get("stream_id") != stream_id:
                continue
            offset = int(frame.get("offset", 0))
            end = offset + int(frame.get("length", 0))
            if end > frontier:
                heapq.heappush(pending, (offset, end))
        while pending and pending[0][0] <= frontier:
            _, end = heapq.heappop(pending)
            if end > frontier:
                frontier = end
                advanced = True
        if not advanced:
            continue
        if first is None:
            first = last_advance = now
            continue
        gap = now - last_advance
        if now - first >= since and (best is None or gap > best[0]):
            best = (gap, last_advance - first)
        last_advance = now
    if first is None:
        return None
    return Stall(seconds=best[0], at=best[1]) if best else Stall(0.0, 0.0)


def _read_qlog(directory: Path) -> tuple[list[dict[str, Any]], float | None]:
    """Events of the one client qlog in ``directory``, and its wall-clock start (epoch s)."""
    from datetime import datetime

    from tquic.qlog import read_seq

    files = sorted(directory.glob("*.sqlog"))
    if not files:
        return [], None
    records = read_seq(files[0].read_text())
    if not records:
        return [], None
    start = None
    with contextlib.suppress(KeyError, TypeError, ValueError):
        stamp = records[0]["trace"]["common_fields"]["reference_time"]["wall_clock_time"]
        start = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return records[1:], start


class BondingLab:
    """A topology, a served random file of ``size`` bytes, and downloads of it.

    ``workdir`` holds the certificate, the file and the qlogs; it must exist.
    """

    def __init__(self, links: Sequence[LinkSpec | float], workdir: Path | str, *,
                 size: int, cc: str = "cubic") -> None:
        if size <= 0:
            raise ValueError(f"size: {size}; give a positive number of bytes")
        self.net = Topology(links)
        self.workdir = Path(workdir)
        self.size = size
        self.cc = cc
        self._server: subprocess.Popen[Any] | None = None
        self._serving: tuple[str, str] | None = None  # (scheduler, listen host)
        self._downloads = 0
        self.sha256 = ""

    def __enter__(self) -> BondingLab:
        try:
            self._prepare()
            self.net.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.net.close()  # stops the server and anything left in the namespaces
        self._server = None

    def _prepare(self) -> None:
        from tquic.crypto.tls.certs import generate_self_signed

        server_addrs = tuple(link.server_addr for link in self.net.links)
        cert, key = generate_self_signed(server_addrs, key_type="ec")
        (self.workdir / "cert.pem").write_bytes(cert)
        key_path = self.workdir / "key.pem"
        key_path.write_bytes(key)
        os.chmod(key_path, 0o600)
        www = self.workdir / "www"
        www.mkdir(exist_ok=True)
        digest = hashlib.sha256()
        with open(www / "file.bin", "wb") as out:
            left = self.size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        self.sha256 = digest.hexdigest()

    @property
    def server_addr(self) -> str:
        return self.net.link(1).server_addr

    def serve(self, scheduler: str = "minrtt", *, listen: str | None = None) -> None:
        """(Re)start ``tquic server`` with this multipath scheduler (it sends the data).

        ``listen``: the host to listen on (default link 1's server address;
        ``0.0.0.0`` for the wildcard, where the server has to answer each path
        from the address the client sent to).
        """
        host = listen or self.server_addr
        if self._server is not None and self._serving == (scheduler, host):
            return
        if self._server is not None:
            self._server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(5.0)
        log_path = self.workdir / f"server-{scheduler}.log"
        with open(log_path, "wb") as log:
            self._server = self.net.spawn("server", tquic_argv(
                "server", "--listen", f"{host}:{PORT}",
                "--cert", str(self.workdir / "cert.pem"), "--key", str(self.workdir / "key.pem"),
                "--root", str(self.workdir / "www"), "--alpn", "hq-interop", "--cc", self.cc,
                "--scheduler", scheduler), stdout=log, stderr=subprocess.STDOUT)
        self._serving = (scheduler, host)
        deadline = time.monotonic() + _READY_TIMEOUT
        while b"listening on" not in log_path.read_bytes():
            if self._server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tquic server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def _rx_total(self, links: Sequence[int]) -> int:
        return sum(self.net.counters(k)[0] for k in links)

    def download(self, links: Sequence[int], *, scheduler: str = "minrtt",
                 down_link: int | None = None, down_fraction: float = 0.4,
                 qlog: bool = True, timeout: float = 60.0, listen: str | None = None,
                 up_after: float | None = None, extra: Sequence[str] = (),
                 cut: str = "link") -> Transfer:
        """Download the file over ``links`` (path 0 on the first); optionally cut one.

        ``down_link`` goes down once ``down_fraction`` of the file has crossed
        the client's interfaces, and with ``up_after`` comes back up that many
        seconds later (its routes restored: a flap).  ``cut="address"`` removes
        the client's address of the link instead (and restores it).  ``extra``: more ``tquic
        client`` options.  The file's transfer must end within ``timeout``
        seconds (the client is killed after it).
        """
        if not links:
            raise ValueError("links: name at least one link")
        if down_link is not None and down_link not in links:
            raise ValueError(f"down_link: {down_link} is not one of the links {list(links)}")
        if cut not in ("link", "address"):
            raise ValueError(f"cut: {cut!r}; choose 'link' or 'address'")
        set_down = self.net.set_link if cut == "link" else self.net.set_address
        self.serve(scheduler, listen=listen)
        self._downloads += 1
        qlog_dir = self.workdir / f"qlog-{self._downloads}"
        out_dir = self.workdir / f"out-{self._downloads}"
        out_dir.mkdir()
        argv = ["client", f"https://{self.server_addr}:{PORT}/file.bin", "--ca",
                str(self.workdir / "cert.pem"), "--alpn", "hq-interop", "--json",
                "--cc", self.cc, "--scheduler", scheduler, "--timeout", "10", "-o", str(out_dir),
                *extra]
        for k in links:
            link = self.net.link(k)
            argv += ["--path", f"{link.client_addr}%{link.client_dev}"]
        if qlog:
            qlog_dir.mkdir()
            argv += ["--qlog-dir", str(qlog_dir)]
        before = [self.net.counters(k)[0] for k in links]
        started = time.monotonic()
        proc = self.net.spawn("client", tquic_argv(*argv), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        down_wall: float | None = None
        at_up: list[int] | None = None
        try:
            if down_link is not None:
                threshold = sum(before) + down_fraction * self.size
                while proc.poll() is None and self._rx_total(links) < threshold:
                    if time.monotonic() - started > timeout:
                        break
                    time.sleep(_POLL)
                if proc.poll() is None:
                    set_down(down_link, False)
                    down_wall = time.time()
                if up_after is not None and down_wall is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(up_after)
                    if proc.poll() is None:
                        at_up = [self.net.counters(k)[0] for k in links]
                        set_down(down_link, True)
            out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise TimeoutError(f"the download over links {list(links)} took more than "
                               f"{timeout:g} s") from None
        finally:
            if down_link is not None:
                set_down(down_link, True)
        after = [self.net.counters(k)[0] for k in links]
        result = self._result(links, scheduler, out, err, out_dir, qlog_dir if qlog else None,
                              tuple(a - b for a, b in zip(after, before, strict=True)),
                              down_link, down_wall)
        result = replace(result, stderr=err.decode(errors="replace"))
        if at_up is None:
            return result
        return replace(result, link_bytes_after_up=tuple(
            a - u for a, u in zip(after, at_up, strict=True)))

    def _result(self, links: Sequence[int], scheduler: str, out: bytes, err: bytes,
                out_dir: Path, qlog_dir: Path | None, link_bytes: tuple[int, ...],
                down_link: int | None, down_wall: float | None) -> Transfer:
        try:
            report: dict[str, Any] = json.loads(out.decode(errors="replace"))
            result = report["results"][0]
        except (ValueError, KeyError, IndexError):
            return Transfer(tuple(links), scheduler, 0, 0.0, 0.0, False,
                            f"no JSON report; stderr: {err.decode(errors='replace')[-1500:]}",
                            (), link_bytes, None, down_link, None)
        received = out_dir / "file.bin"
        intact = (result.get("error") is None and received.is_file()
                  and _sha256(received) == self.sha256)
        path_bytes = tuple((int(row["path_id"]), int(row["bytes_received"]))
                           for row in report.get("paths", ()))
        stall = None
        down_at = None
        if qlog_dir is not None:
            events, qlog_start = _read_qlog(qlog_dir)
            stall = delivery_stall(events)
            first = _first_data_time(events)
            if down_wall is not None and qlog_start is not None and first is not None:
                down_at = down_wall - qlog_start - first
        return Transfer(tuple(links), scheduler, int(result.get("bytes", 0)),
                        float(result.get("seconds", 0.0)), float(result.get("mbps", 0.0)),
                        intact, result.get("error"), path_bytes, link_bytes, stall,
                        down_link, down_at, report)


def _first_data_time(events: Iterable[dict[str, Any]]) -> float | None:
    for event in events:
        if event.get("name") == "quic:packet_received" and any(
                f.get("frame_type") == "stream" for f in event.get("data", {}).get("frames", ())):
            return float(event["time"]) / 1000.0
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

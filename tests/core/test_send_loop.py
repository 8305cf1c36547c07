"""The one send loop (core/send_loop.py): with several paths the stream-train fast path
builds the packets the general builder builds, on the paths the scheduler picks.

A differential test: the same transfer twice, once with stream trains and once with
them switched off, must put the same packets (path, packet number, size and
retransmission records) on the wire in the same order.  Fake TLS and fixed link
delays make both runs deterministic."""

from __future__ import annotations

from typing import Any

import pytest
from engine_certs import server_config
from engine_fake_tls import fake_tls_factory

from tquic.core.config import QuicConfiguration
from tquic.core.events import DatagramReceived
from tquic.core.packet_builder import PacketBuilder
from tquic.core.packet_draft import PacketDraft
from tquic.core.records import AckRecord, StreamRecord
from tquic.core.send_loop import SendLoop
from tquic.paths.path import Path
from tquic.testing.engines import EnginePair, Link

Sent = tuple[int, int, int, int, tuple[Any, ...]]


def _transfer(monkeypatch: pytest.MonkeyPatch, scheduler: str, paths: int,
              trains: bool, datagrams: int = 0) -> tuple[list[Sent], bytes, int]:
    """(every packet the client sent during the transfer, the bytes the server got,
    how many packets a train built); ``datagrams`` DATAGRAMs of 700 bytes are queued
    with the stream data (a train fills each packet with DATAGRAMs first)."""
    sent: list[Sent] = []
    clients: list[Any] = []
    train_packets = [0]
    seal = PacketBuilder.seal
    send_train = SendLoop._send_train

    def recording_seal(self: PacketBuilder, drafts: list[PacketDraft], path: Path, now: float,
                       off_path: bool = False) -> bytes:
        datagram = seal(self, drafts, path, now, off_path)
        if clients and clients[0].paths.get(path.path_id) is path:
            for d in drafts:
                records = tuple(r for r in d.records if isinstance(r, StreamRecord)) + tuple(
                    ("ack", r.largest) for r in d.records if isinstance(r, AckRecord))
                sent.append((d.path.path_id, d.epoch, d.pn, len(datagram), records))
        return datagram

    def counting_train(self: SendLoop, path: Path, now: float, out: Any, stop: int,
                       reselect: Any) -> tuple[int, Any]:
        sent, chosen = send_train(self, path, now, out, stop, reselect)
        train_packets[0] += sent
        return sent, chosen

    monkeypatch.setattr(PacketBuilder, "seal", recording_seal)
    monkeypatch.setattr(SendLoop, "_send_train", counting_train)
    if not trains:
        monkeypatch.setattr(SendLoop, "_train_ready", lambda self, path: False)
    addrs = [("10.0.0.1", 5000), ("10.0.1.1", 5000), ("10.0.2.1", 5000)]
    links = {addrs[0]: Link(delay=0.01, rate=4_000_000), addrs[1]: Link(delay=0.02, rate=4_000_000),
             addrs[2]: Link(delay=0.015, rate=4_000_000)}
    frames = {"max_datagram_frame_size": 65535} if datagrams else {}
    pair = EnginePair.connected(
        QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                          max_path_id=4, scheduler=scheduler, **frames),
        server_config(max_path_id=4, **frames), tls_factory=fake_tls_factory, links=links,
        client_addr=addrs[0])
    client = pair.client
    clients.append(client)
    for index, addr in enumerate(addrs[1:paths], start=1):
        pair.run_until(lambda: client.can_open_path, timeout=2)
        assert client.add_path(addr, None, pair.now) == index
        pair.run_until(lambda i=index: (p := client.paths.get(i)) is not None  # type: ignore[misc]
                       and p.validated, timeout=2, what=f"path {index} validated")
    sent.clear()
    train_packets[0] = 0
    data = bytes(i % 253 for i in range(400_000))
    for i in range(datagrams):
        client.send_datagram(bytes((i % 256,)) * 700)
    sid = client.open_stream()
    client.send_stream_data(sid, data, end_stream=True)
    pair.run_until(lambda: pair.received(sid)[1], timeout=10, what="the transfer")
    pair.collect()
    got = [e.data for e in pair.server_events if isinstance(e, DatagramReceived)]
    # Every one arrives (no loss on these links), in send order per path only.
    assert sorted(got) == sorted(bytes((i % 256,)) * 700 for i in range(datagrams))
    monkeypatch.undo()
    return sent, pair.received(sid)[0], train_packets[0]


@pytest.mark.parametrize(("scheduler", "paths"), [("minrtt", 2), ("roundrobin", 3)])
def test_stream_trains_under_multipath_send_the_packets_of_the_general_builder(
        monkeypatch: pytest.MonkeyPatch, scheduler: str, paths: int) -> None:
    with_trains, got_trains, trained = _transfer(monkeypatch, scheduler, paths, trains=True)
    general, got_general, none = _transfer(monkeypatch, scheduler, paths, trains=False)
    assert none == 0
    assert trained > len(with_trains) // 2  # the fast path really carried the bulk
    assert {p for p, *_ in with_trains} == set(range(paths))  # every path carried data
    assert with_trains == general
    assert got_trains == got_general == bytes(i % 253 for i in range(400_000))


@pytest.mark.parametrize(("paths", "datagrams"), [(1, 200), (2, 150)])
def test_trains_with_datagrams_send_the_packets_of_the_general_builder(
        monkeypatch: pytest.MonkeyPatch, paths: int, datagrams: int) -> None:
    """DATAGRAMs queued with stream data: a train fills each packet with them first,
    then STREAM data, as the general builder does."""
    with_trains, got_trains, trained = _transfer(monkeypatch, "minrtt", paths, trains=True,
                                                 datagrams=datagrams)
    general, got_general, none = _transfer(monkeypatch, "minrtt", paths, trains=False,
                                           datagrams=datagrams)
    assert none == 0
    assert trained > len(with_trains) // 2
    assert with_trains == general
    assert got_trains == got_general == bytes(i % 253 for i in range(400_000))

"""The relay forwards the ECN field (RFC 3168 §5) and its links can mark or clear it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from netem_udp import wait_for

from tquic.io.udp import UdpSocket
from tquic.netem.relay import NetemThread
from tquic.netem.spec import LinkTable, parse_profile
from tquic.paths.network_path import Address

ECT1, ECT0, CE = 1, 2, 3


class EcnTarget:
    """Records (payload, ECN bits) of what arrives; echoes each datagram marked ``echo``."""

    def __init__(self, echo: int | None = None) -> None:
        self.udp = UdpSocket.bind("127.0.0.1", 0, gso=False, gro=False)
        self.echo = echo
        self.received: list[tuple[bytes, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> Address:
        return self.udp.local_address

    def _run(self) -> None:
        while not self._stop.is_set():
            datagrams = self.udp.recv()
            if not datagrams:
                time.sleep(0.002)
            for d in datagrams:
                self.received.append((d.data, d.ecn))
                if self.echo is not None:
                    self.udp.send(d.data, d.addr, self.echo)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.udp.close()


@contextmanager
def ecn_relay(link: str, echo: int | None = None) -> Iterator[tuple[Address, EcnTarget]]:
    target = EcnTarget(echo)
    rule = parse_profile(link)
    thread = NetemThread(("127.0.0.1", 0), target.address, LinkTable((), rule))
    try:
        yield thread.start(), target
    finally:
        thread.stop()
        target.close()


def _send(to: Address, count: int, ecn: int, size: int = 100) -> UdpSocket:
    sender = UdpSocket.bind("127.0.0.1", 0, gso=False, gro=False)
    for i in range(count):
        assert sender.send(i.to_bytes(4, "big") * (size // 4), to, ecn)
    return sender


def test_marks_are_forwarded_both_ways_unchanged() -> None:
    with ecn_relay("delay=1ms", echo=ECT1) as (address, target):
        sender = _send(address, 20, ECT0)
        back: list[int] = []
        wait_for(lambda: back.extend(d.ecn for d in sender.recv()) or len(back) >= 20, 5.0)
        sender.close()
        assert [ecn for _, ecn in target.received] == [ECT0] * 20
        assert back == [ECT1] * 20


def test_a_bleaching_link_clears_the_field() -> None:
    with ecn_relay("delay=1ms,ecn=bleach") as (address, target):
        _send(address, 20, ECT0).close()
        wait_for(lambda: len(target.received) >= 20, 5.0)
        assert [ecn for _, ecn in target.received] == [0] * 20


def test_a_classic_ecn_queue_marks_ce_instead_of_dropping() -> None:
    # 60 x 1,200 bytes at 1 Mbit/s: the queue holds up to ~0.6 s, far beyond the 5 ms
    # step, and has room for all of them -- so the late ones arrive CE, none is lost.
    with ecn_relay("rate=1mbit,queue=200,ecn=classic") as (address, target):
        _send(address, 60, ECT0, size=1200).close()
        wait_for(lambda: len(target.received) >= 60, 5.0)
        marks = [ecn for _, ecn in target.received]
        assert len(marks) == 60
        assert marks[0] == ECT0  # the queue was empty
        assert marks.count(CE) > 40 and set(marks) <= {ECT0, CE}

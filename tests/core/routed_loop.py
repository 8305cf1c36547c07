"""An in-memory loop that routes every datagram by the address the engine put on it
(tests of the preferred address and of client migration)."""

from __future__ import annotations

from typing import Any

from engine_certs import server_config
from engine_fake_tls import fake_tls_factory
from engine_loop import SERVER_ADDR, Loop, make_pair

from tquic.core.config import QuicConfiguration
from tquic.core.events import StreamDataReceived
from tquic.paths.network_path import NetworkPath

PREFERRED = ("10.0.0.3", 8443)


class RoutedLoop(Loop):
    """Delivers each datagram to the address it was sent to; records where the client
    sent its datagrams (``client_sent_to``)."""

    def __init__(self, *args: Any, listening: tuple[tuple[str, int], ...], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.listening = listening
        self.client_sent_to: list[tuple[str, int]] = []

    def _send_all(self) -> None:
        for conn, peer in ((self.client, self.server), (self.server, self.client)):
            for data, path in conn.datagrams_to_send(self.now):
                ecn = conn.ecn_codepoint(path)  # marks arrive as sent (RFC 9000 §13.4)
                self.count += 1
                if conn is self.client:
                    self.client_sent_to.append(path.remote)
                    if path.remote not in self.listening:
                        continue  # nobody there
                    dest = NetworkPath(path.remote, self.client_addr)
                else:
                    dest = NetworkPath(self.client_addr, path.local)
                self.seq += 1
                self.in_flight.append((self.now + self.delay, self.seq, peer, data, dest, ecn))


def routed_pair(listening: tuple[tuple[str, int], ...] = (SERVER_ADDR, PREFERRED),
                client: QuicConfiguration | None = None, **server_kw: Any) -> RoutedLoop:
    plain = make_pair(client_config=client, server_config=server_config(**server_kw),
                      tls_factory=fake_tls_factory)
    loop = RoutedLoop(plain.client, plain.server, listening=listening)
    assert loop.run_until(lambda: loop.client.handshake_confirmed
                          and loop.server.handshake_complete, max_time=5)
    return loop


def transfer(loop: Loop, size: int) -> bytes:
    data = bytes(range(256)) * (size // 256)
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, data, end_stream=True)

    def done() -> bool:
        return any(isinstance(e, StreamDataReceived) and e.stream_id == sid and e.end_stream
                   for e in loop.server_events)
    assert loop.run_until(done, max_time=loop.now + 20)
    got = b"".join(e.data for e in loop.server_events
                   if isinstance(e, StreamDataReceived) and e.stream_id == sid)
    assert got == data
    return got

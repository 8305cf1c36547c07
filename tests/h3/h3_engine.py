"""Two real tquic engines (real TLS 1.3) joined in memory, with HTTP/3 on top.

Virtual time: datagrams take ``delay`` seconds each way, timers fire when the
clock reaches them, so a run is deterministic and fast.  Each side's
H3Connection is created when its engine reports HandshakeCompleted, as the
asyncio bridge does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import HandshakeCompleted
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.connection import H3Connection
from tquic.h3.events import H3Event
from tquic.h3.settings import H3Config
from tquic.paths.network_path import NetworkPath

CLIENT = ("192.0.2.1", 50000)
SERVER = ("192.0.2.2", 443)


@lru_cache(maxsize=1)
def _cert() -> tuple[bytes, bytes]:
    return generate_self_signed(("localhost",))


class EnginePair:
    def __init__(
        self,
        client_config: H3Config | None = None,
        server_config: H3Config | None = None,
        *,
        datagrams: bool = True,
        delay: float = 0.005,
        drop: Callable[[int], bool] | None = None,
    ) -> None:
        cert, key = _cert()
        size = 1200 if datagrams else None
        self.client_quic = QuicConnection(QuicConfiguration(
            is_client=True, alpn_protocols=("h3",), verify_peer=False, server_name="localhost",
            max_datagram_frame_size=size))
        self.server_quic = QuicConnection(QuicConfiguration(
            is_client=False, alpn_protocols=("h3",), certificate=cert, private_key=key,
            max_datagram_frame_size=size), is_client=False)
        self._h3_configs = {id(self.client_quic): client_config, id(self.server_quic): server_config}
        self.client: H3Connection | None = None
        self.server: H3Connection | None = None
        self.client_events: list[H3Event] = []
        self.server_events: list[H3Event] = []
        self.now = 0.0
        self.delay = delay
        self.drop = drop
        self.sent = 0
        self._flight: list[tuple[float, int, QuicConnection, bytes, NetworkPath, int]] = []
        self.client_quic.connect(NetworkPath(CLIENT, SERVER), 0.0)

    def _collect(self) -> None:
        for quic in (self.client_quic, self.server_quic):
            is_client = quic is self.client_quic
            while (event := quic.next_event()) is not None:
                h3 = self.client if is_client else self.server
                if isinstance(event, HandshakeCompleted) and h3 is None:
                    h3 = H3Connection(quic, is_client, self._h3_configs[id(quic)])
                    if is_client:
                        self.client = h3
                    else:
                        self.server = h3
                elif h3 is not None:
                    (self.client_events if is_client else self.server_events).extend(
                        h3.handle_event(event))

    def _send(self) -> None:
        for quic, peer, path in (
            (self.client_quic, self.server_quic, NetworkPath(SERVER, CLIENT)),
            (self.server_quic, self.client_quic, NetworkPath(CLIENT, SERVER)),
        ):
            for data, sent_on in quic.datagrams_to_send(self.now):
                self.sent += 1
                if self.drop is not None and self.drop(self.sent):
                    continue
                ecn = quic.ecn_codepoint(sent_on)  # marks arrive as sent (RFC 9000 §13.4)
                self._flight.append((self.now + self.delay, self.sent, peer, data, path, ecn))

    def step(self) -> bool:
        self._collect()
        self._send()
        times = [t for t, *_ in self._flight]
        times += [t for q in (self.client_quic, self.server_quic) if (t := q.next_timeout()) is not None]
        if not times:
            return False
        self.now = max(self.now, min(times))
        due = sorted(x for x in self._flight if x[0] <= self.now)
        self._flight = [x for x in self._flight if x[0] > self.now]
        for _, _, quic, data, path, ecn in due:
            quic.receive_datagram(data, path, self.now, ecn=ecn)
        for quic in (self.client_quic, self.server_quic):
            deadline = quic.next_timeout()
            if deadline is not None and deadline <= self.now:
                quic.handle_timeout(self.now)
        self._collect()
        self._send()
        return True

    def run_until(self, condition: Callable[[], Any], max_time: float = 20.0) -> None:
        stalled = 0
        for _ in range(200_000):
            if condition():
                return
            before = (self.now, self.sent)
            if self.now > max_time or not self.step():
                break
            stalled = stalled + 1 if (self.now, self.sent) == before else 0
            if stalled > 1000:
                raise AssertionError(f"engines stalled at t={self.now:.5f}s: a timer that never moves")
        if not condition():
            raise AssertionError(f"condition not reached by t={self.now:.3f}s")

    def handshake(self) -> tuple[H3Connection, H3Connection]:
        self.run_until(lambda: self.client is not None and self.server is not None
                       and self.client.settings_received and self.server.settings_received)
        assert self.client is not None and self.server is not None
        return self.client, self.server

"""Two real tquic engines (real TLS 1.3) joined in memory, with HTTP/3 on top.

The engines and their link are a tquic.testing.engines.EnginePair (virtual time:
datagrams take ``delay`` seconds each way, timers fire when the clock reaches
them, so a run is deterministic and fast).  Each side's H3Connection is created
when its engine reports HandshakeCompleted, as the asyncio bridge does, and is
handed every QUIC event after that.
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
from tquic.testing.engines import EnginePair, Link

CLIENT = ("192.0.2.1", 50000)
SERVER = ("192.0.2.2", 443)


@lru_cache(maxsize=1)
def _cert() -> tuple[bytes, bytes]:
    return generate_self_signed(("localhost",))


class H3Pair:
    """An HTTP/3 client and server over an EnginePair; ``drop(n)`` drops the n-th
    datagram (1-based, both directions counted together)."""

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
        link = Link(delay=delay, drop=None if drop is None else lambda n, _data: drop(n))
        self.engines = EnginePair(self.client_quic, self.server_quic, links={CLIENT: link},
                                  client_addr=CLIENT, server_addr=SERVER)
        self._seen = {id(self.client_quic): 0, id(self.server_quic): 0}
        self.engines.connect()

    @property
    def now(self) -> float:
        return self.engines.now

    def _pump(self) -> None:
        """Hand the QUIC events collected since the last call to the H3 layers (the
        frames they queue leave at the start of the engines' next step)."""
        for quic, events in ((self.client_quic, self.engines.client_events),
                             (self.server_quic, self.engines.server_events)):
            is_client = quic is self.client_quic
            start, self._seen[id(quic)] = self._seen[id(quic)], len(events)
            for event in events[start:]:
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

    def run_until(self, condition: Callable[[], Any], timeout: float = 20.0) -> None:
        """Run until ``condition()`` holds; EngineTimeout if not within ``timeout``
        virtual seconds."""
        def pumped() -> bool:
            self._pump()
            return bool(condition())
        self.engines.run_until(pumped, timeout=timeout)

    def handshake(self) -> tuple[H3Connection, H3Connection]:
        self.run_until(lambda: self.client is not None and self.server is not None
                       and self.client.settings_received and self.server.settings_received)
        assert self.client is not None and self.server is not None
        return self.client, self.server

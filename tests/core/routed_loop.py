"""Two engines whose datagrams go to the address the engine put on them (tests of the
preferred address and of client migration): tquic.testing.engines.EnginePair with
the server receiving only on ``listening``."""

from __future__ import annotations

from typing import Any

from engine_certs import server_config
from engine_fake_tls import fake_tls_factory
from engine_loop import SERVER_ADDR

from tquic.core.config import QuicConfiguration
from tquic.testing.engines import EnginePair

PREFERRED = ("10.0.0.3", 8443)


def routed_pair(listening: tuple[tuple[str, int], ...] = (SERVER_ADDR, PREFERRED),
                client: QuicConfiguration | None = None, **server_kw: Any) -> EnginePair:
    """A pair past the handshake whose server receives on ``listening`` only."""
    config = client or QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                         verify_peer=False)
    return EnginePair.connected(config, server_config(**server_kw),
                                tls_factory=fake_tls_factory, server_addrs=listening)


def transfer(pair: EnginePair, size: int) -> bytes:
    """Send ``size`` bytes on a new client stream; they all arrive within 20 s."""
    data = bytes(range(256)) * (size // 256)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, data, end_stream=True)
    pair.run_until(lambda: pair.received(sid)[1], timeout=20, what=f"stream {sid}'s end")
    got, _ = pair.received(sid)
    assert got == data
    return got

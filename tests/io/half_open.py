"""A client that sends its first Initial and then goes silent: one real handshake in
progress on the server (a half-open connection), for the load and limit tests."""

from __future__ import annotations

import socket

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.paths.network_path import NetworkPath


def send_half_open(client_config: QuicConfiguration, port: int, now: float = 0.0) -> None:
    """Send one client's first flight to 127.0.0.1:``port`` and never answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.bind(("127.0.0.1", 0))
        engine = QuicConnection(client_config, is_client=True)
        engine.connect(NetworkPath(raw.getsockname(), ("127.0.0.1", port)), now)
        for datagram, _ in engine.datagrams_to_send(now):
            raw.sendto(datagram, ("127.0.0.1", port))

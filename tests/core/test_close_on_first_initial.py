"""A server that fails the handshake on the client's first Initial still tells the client.

RFC 9000 §8.1: every byte of a datagram attributed to the connection counts towards the
anti-amplification budget, including the datagram whose content closed the connection;
RFC 9001 §4.8: the TLS alert travels as CONNECTION_CLOSE 0x100 + alert.
"""

from __future__ import annotations

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import ConnectionTerminated
from tquic.crypto.tls.certs import generate_self_signed
from tquic.paths.network_path import NetworkPath

NO_APPLICATION_PROTOCOL = 0x100 + 120


def test_alpn_mismatch_on_first_initial_reaches_the_client_as_connection_close() -> None:
    cert, key = generate_self_signed()
    client = QuicConnection(QuicConfiguration(alpn_protocols=("h3",), verify_peer=False),
                            is_client=True)
    server = QuicConnection(QuicConfiguration(is_client=False, alpn_protocols=("hq-interop",),
                                              certificate=cert, private_key=key),
                            is_client=False)
    to_server = NetworkPath(("192.0.2.2", 443), ("192.0.2.1", 5000))
    to_client = NetworkPath(("192.0.2.1", 5000), ("192.0.2.2", 443))
    client.connect(to_client, 0.0)
    for dgram, _ in client.datagrams_to_send(0.0):
        server.receive_datagram(dgram, to_server, 0.01)
    replies = server.datagrams_to_send(0.01)
    assert replies, "the server sent no CONNECTION_CLOSE"
    for dgram, _ in replies:
        client.receive_datagram(dgram, to_client, 0.02)
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    [closed] = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert closed.by_peer and closed.error_code == NO_APPLICATION_PROTOCOL

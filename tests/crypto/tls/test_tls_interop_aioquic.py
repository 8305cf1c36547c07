"""Interoperability with aioquic's TLS 1.3 engine, in memory (both directions).

HelloRetryRequest is not covered: aioquic's server never sends one and its
client always offers a share for every group.

aioquic is an optional dependency (the ``interop`` extra); without it these
tests are skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
from tls_helpers import Pki, client_config, server_config

from tquic.crypto.tls import Epoch, TicketStore, TlsClient, TlsServer

tls = pytest.importorskip("aioquic.tls")
aio_buffer = pytest.importorskip("aioquic.buffer")

pytestmark = pytest.mark.interop
QTP = 0x39


def _buffers() -> dict[Any, Any]:
    return {e: aio_buffer.Buffer(capacity=65536) for e in tls.Epoch}


def _collect(bufs: dict[Any, Any]) -> list[tuple[Epoch, bytes]]:
    return [
        (Epoch(e.value), b.data)
        for e, b in sorted(bufs.items(), key=lambda kv: kv[0].value)
        if b.data
    ]


class AioPeer:
    """An aioquic tls.Context with its secrets and tickets recorded."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.secrets: dict[tuple[int, bool], bytes] = {}
        self.tickets: list[Any] = []
        ctx.update_traffic_key_cb = self._on_key
        ctx.new_session_ticket_cb = self.tickets.append

    def _on_key(self, direction: Any, epoch: Any, suite: Any, secret: bytes) -> None:
        self.secrets[(epoch.value, direction == tls.Direction.ENCRYPT)] = secret

    def feed(self, epoch: Epoch, data: bytes) -> list[tuple[Epoch, bytes]]:
        bufs = _buffers()
        self.ctx.handle_message(data, bufs)
        return _collect(bufs)


def _drive(ours: TlsClient | TlsServer, peer: AioPeer, first: list[tuple[Epoch, bytes]]) -> None:
    pending = first
    for _ in range(10):
        back: list[tuple[Epoch, bytes]] = []
        for epoch, data in pending:
            back += peer.feed(epoch, data)
        for epoch, data in back:
            ours.receive(epoch, data)
        pending = ours.pop_output()
        if not pending and not back:
            return
    raise AssertionError("did not settle")


def _aio_server(pki: Pki, **kw: Any) -> AioPeer:
    cert, key = pki.leaves["ec"]
    ctx = tls.Context(is_client=False, alpn_protocols=["h3"], **kw)
    ctx.certificate = cert
    ctx.certificate_private_key = key
    ctx.handshake_extensions = [(QTP, b"aio-server-tp")]
    return AioPeer(ctx)


def test_our_client_with_aioquic_server_then_resumes_with_0rtt(pki: Pki) -> None:
    server = _aio_server(pki, max_early_data=0xFFFFFFFF)
    store: dict[bytes, Any] = {}
    server.ctx.new_session_ticket_cb = lambda t: store.__setitem__(t.ticket, t)
    client = TlsClient(client_config(pki, enable_early_data=True), b"our-client-tp")
    client.start()
    _drive(client, server, client.pop_output())
    assert client.handshake_complete
    assert client.alpn_protocol == "h3"
    assert client.peer_transport_parameters == b"aio-server-tp"
    ours = {(int(s.epoch), s.is_write): s.secret for s in client.pop_secrets()}
    for (epoch, is_write), secret in ours.items():
        assert server.secrets[(epoch, not is_write)] == secret
    assert len(client.new_session_tickets) == 1
    ticket = client.new_session_tickets[0]
    assert ticket.allows_early_data

    server2 = _aio_server(pki, max_early_data=0xFFFFFFFF)
    server2.ctx.get_session_ticket_cb = store.get
    client2 = TlsClient(client_config(pki, enable_early_data=True, session_ticket=ticket), b"c")
    client2.start()
    _drive(client2, server2, client2.pop_output())
    assert client2.session_resumed and client2.early_data_accepted
    early = next(s for s in client2.pop_secrets() if s.epoch == Epoch.ZERO_RTT)
    assert server2.secrets[(int(Epoch.ZERO_RTT), False)] == early.secret


def test_aioquic_client_with_our_server_then_resumes_with_0rtt(pki: Pki) -> None:
    store = TicketStore()
    cfg = server_config(pki, enable_early_data=True)
    ctx = tls.Context(
        is_client=True, alpn_protocols=["h3"], cadata=pki.ca_pem, server_name="localhost"
    )
    ctx.handshake_extensions = [(QTP, b"aio-client-tp")]
    client = AioPeer(ctx)
    server = TlsServer(cfg, b"our-server-tp", store)
    first = client.feed(Epoch.INITIAL, b"")
    for epoch, data in first:
        server.receive(epoch, data)
    _drive(server, client, server.pop_output())
    assert server.handshake_complete and ctx.alpn_negotiated == "h3"
    assert server.peer_transport_parameters == b"aio-client-tp"
    ours = {(int(s.epoch), s.is_write): s.secret for s in server.pop_secrets()}
    for (level, is_write), secret in ours.items():
        assert client.secrets[(level, not is_write)] == secret
    assert server.send_session_ticket()
    for epoch, data in server.pop_output():
        client.feed(epoch, data)
    assert len(client.tickets) == 1

    ctx2 = tls.Context(
        is_client=True, alpn_protocols=["h3"], cadata=pki.ca_pem, server_name="localhost"
    )
    ctx2.handshake_extensions = [(QTP, b"aio-client-tp")]
    ctx2.session_ticket = client.tickets[0]
    client2 = AioPeer(ctx2)
    server2 = TlsServer(cfg, b"our-server-tp", store)
    for epoch, data in client2.feed(Epoch.INITIAL, b""):
        server2.receive(epoch, data)
    _drive(server2, client2, server2.pop_output())
    assert server2.session_resumed and server2.early_data_accepted and ctx2.early_data_accepted
    early = next(s for s in server2.pop_secrets() if s.epoch == Epoch.ZERO_RTT)
    assert client2.secrets[(int(Epoch.ZERO_RTT), True)] == early.secret

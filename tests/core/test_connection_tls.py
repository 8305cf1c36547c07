"""End-to-end with the real TLS 1.3 engine: handshake, resumption, 0-RTT accepted and rejected."""

from __future__ import annotations

from typing import Any

from engine_certs import server_config
from engine_pairs import handshake_pair, terminated

from tquic.core.config import QuicConfiguration
from tquic.core.events import HandshakeCompleted, SessionTicketReceived, StreamDataReceived
from tquic.crypto.tls import TicketStore


def _real(**kwargs: Any) -> Any:
    return handshake_pair(tls_factory=None, **kwargs)


def _completed(events: list[Any]) -> HandshakeCompleted:
    return next(e for e in events if isinstance(e, HandshakeCompleted))


def _ticket(store: TicketStore) -> Any:
    loop = _real(server_config=server_config(ticket_store=store, enable_early_data=True),
                 client_config=QuicConfiguration(is_client=True, verify_peer=False,
                                                 alpn_protocols=("hq",)))
    loop.run_until(lambda: any(isinstance(e, SessionTicketReceived)
                               for e in loop.client_events), timeout=30)
    return next(e for e in loop.client_events if isinstance(e, SessionTicketReceived)).ticket


def test_real_tls_handshake_and_echo() -> None:
    loop = _real()
    assert _completed(loop.client_events).alpn_protocol == "hq"
    sid = loop.client.open_stream()
    loop.client.send_stream_data(sid, b"ping" * 1000, end_stream=True)
    loop.run_until(lambda: any(isinstance(e, StreamDataReceived) and e.end_stream
                               for e in loop.server_events), timeout=30)
    assert terminated(loop.server_events) is None


def test_resumption_with_a_session_ticket() -> None:
    store = TicketStore()
    ticket = _ticket(store)
    loop = _real(server_config=server_config(ticket_store=store),
                 client_config=QuicConfiguration(is_client=True, verify_peer=False,
                                                 alpn_protocols=("hq",), session_ticket=ticket))
    assert _completed(loop.client_events).session_resumed


def _zero_rtt(store: TicketStore, ticket: Any) -> Any:
    from engine_pairs import make_pair

    loop = make_pair(
        server_config=server_config(ticket_store=store, enable_early_data=True),
        client_config=QuicConfiguration(is_client=True, verify_peer=False, alpn_protocols=("hq",),
                                        session_ticket=ticket, enable_early_data=True))
    sid = loop.client.open_stream()  # before the handshake: limits remembered from the ticket
    loop.client.send_stream_data(sid, b"early" * 100, end_stream=True)
    loop.run_until(lambda: any(isinstance(e, StreamDataReceived) and e.end_stream
                               for e in loop.server_events), timeout=30)
    data = b"".join(e.data for e in loop.server_events if isinstance(e, StreamDataReceived))
    assert data == b"early" * 100
    loop.run_until(lambda: loop.client.handshake_complete
                   and loop.server.handshake_complete, timeout=30)
    return loop


def test_zero_rtt_accepted_delivers_early_data() -> None:
    store = TicketStore()
    loop = _zero_rtt(store, _ticket(store))
    assert loop.client.zero_rtt_sent
    # the data arrived before the client even finished its handshake
    first_data = next(i for i, e in enumerate(loop.server_events)
                      if isinstance(e, StreamDataReceived))
    first_done = next(i for i, e in enumerate(loop.server_events)
                      if isinstance(e, HandshakeCompleted))
    assert first_data < first_done
    assert _completed(loop.client_events).early_data_accepted


def test_zero_rtt_rejected_data_is_retransmitted_in_one_rtt() -> None:
    ticket = _ticket(TicketStore())
    loop = _zero_rtt(TicketStore(), ticket)  # another server key: the ticket is useless
    assert loop.client.zero_rtt_sent
    assert not _completed(loop.client_events).early_data_accepted

"""Closing: application and transport CONNECTION_CLOSE, closing/draining periods, idle timeout."""

from __future__ import annotations

from engine_pairs import handshake_pair, terminated

from tquic.core.events import ConnectionTerminated


def test_application_close_reaches_the_peer_with_code_and_reason() -> None:
    loop = handshake_pair()
    loop.client.close(error_code=42, reason="bye")
    loop.run_until(lambda: terminated(loop.server_events) is not None, timeout=5)
    event = terminated(loop.server_events)
    assert event == ConnectionTerminated(42, None, "bye", by_peer=True, application=True)
    assert terminated(loop.client_events).by_peer is False


def test_closing_and_draining_end_after_three_pto_and_then_send_nothing() -> None:
    loop = handshake_pair()
    loop.client.close(error_code=0)
    loop.run_until(lambda: loop.client.is_closed and loop.server.is_closed, timeout=10)
    assert loop.now < 5.0
    assert loop.client.datagrams_to_send(loop.now) == []
    assert loop.server.datagrams_to_send(loop.now) == []
    assert loop.client.next_timeout() is None


def test_closing_endpoint_answers_late_packets_with_connection_close() -> None:
    loop = handshake_pair()
    sid = loop.server.open_stream()
    loop.client.close(error_code=7, reason="done")
    loop.client.datagrams_to_send(loop.now)  # the first CONNECTION_CLOSE is lost
    loop.server.send_stream_data(sid, b"late")
    for data, path in loop.server.datagrams_to_send(loop.now):
        loop.client.receive_datagram(data, path, loop.now)
    assert loop.client.datagrams_to_send(loop.now), "CONNECTION_CLOSE repeated"


def test_idle_timeout_closes_silently_on_both_sides() -> None:
    from engine_certs import server_config

    from tquic.core.config import QuicConfiguration

    loop = handshake_pair(
        client_config=QuicConfiguration(is_client=True, verify_peer=False, idle_timeout=2.0),
        server_config=server_config(idle_timeout=5.0))
    start = loop.now
    loop.run_until(lambda: loop.client.is_closed and loop.server.is_closed, timeout=30)
    # the negotiated timeout is the smaller one (RFC 9000 §10.1), at least 3 PTO
    assert 2.0 <= loop.now - start < 3.0
    event = terminated(loop.client_events)
    assert event is not None and event.reason == "idle timeout"


def test_application_close_during_handshake_becomes_application_error() -> None:
    from engine_fake_tls import fake_tls_factory
    from engine_pairs import make_pair

    loop = make_pair(tls_factory=fake_tls_factory)
    loop.step()  # the server has the Initial; neither side has 1-RTT keys yet on the client
    loop.client.close(error_code=99, reason="secret")
    loop.run_until(lambda: terminated(loop.server_events) is not None, timeout=5)
    event = terminated(loop.server_events)
    # RFC 9000 §10.2.3: in Initial/Handshake packets it is a transport APPLICATION_ERROR
    # with no reason.
    assert event.error_code == 0x0C and not event.application and event.reason == ""

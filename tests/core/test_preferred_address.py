"""The server's preferred address (RFC 9000 §9.6, §18.2), two engines in memory.

The loop here routes every datagram by the address the engine put on it, so a
client that moves to the preferred address really reaches the server there
(and a preferred address nobody listens on really drops what is sent to it).
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_certs import server_config
from engine_fake_tls import fake_tls_factory
from engine_loop import CLIENT_ADDR, SERVER_ADDR, Loop, make_pair, terminated

from tquic.core.config import ConfigurationError, QuicConfiguration
from tquic.core.events import PathMigrated, StreamDataReceived
from tquic.core.network_path import NetworkPath
from tquic.wire.errors import TransportErrorCode
from tquic.wire.params import TransportParameters

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
                self.count += 1
                if conn is self.client:
                    self.client_sent_to.append(path.remote)
                    if path.remote not in self.listening:
                        continue  # nobody there
                    dest = NetworkPath(path.remote, self.client_addr)
                else:
                    dest = NetworkPath(self.client_addr, path.local)
                self.seq += 1
                self.in_flight.append((self.now + self.delay, self.seq, peer, data, dest))


def routed_pair(listening: tuple[tuple[str, int], ...] = (SERVER_ADDR, PREFERRED),
                client: QuicConfiguration | None = None, **server_kw: Any) -> RoutedLoop:
    plain = make_pair(client_config=client, server_config=server_config(**server_kw),
                      tls_factory=fake_tls_factory)
    loop = RoutedLoop(plain.client, plain.server, listening=listening)
    assert loop.run_until(lambda: loop.client._handshake_confirmed
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


def test_server_sends_preferred_address_with_cid_of_sequence_number_1() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    params = loop.client._peer_params
    assert params is not None and params.preferred_address is not None
    address = params.preferred_address
    assert address.ipv4 == PREFERRED and address.ipv6 is None
    entry = loop.server._local_cids.get(address.connection_id)
    assert entry is not None and entry.sequence_number == 1  # RFC 9000 §5.1.1
    assert address.stateless_reset_token == entry.reset_token
    assert address.connection_id in loop.server.host_cids  # routed by the endpoint


def test_client_validates_and_moves_to_the_preferred_address() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    assert loop.run_until(lambda: any(isinstance(e, PathMigrated) for e in loop.client_events),
                          max_time=loop.now + 5)
    client_path = loop.client.paths.primary
    assert client_path.network_path.remote == PREFERRED
    assert client_path.network_path.local == CLIENT_ADDR  # same local address (§9.6.1)
    params = loop.client._peer_params
    assert params is not None and params.preferred_address is not None
    assert client_path.peer_cid is not None
    assert client_path.peer_cid.cid == params.preferred_address.connection_id
    first = len(loop.client_sent_to)
    transfer(loop, 200_000)
    assert set(loop.client_sent_to[first:]) == {PREFERRED}
    # The server answers from its preferred address too, without re-validating the
    # client (whose address did not change).
    server_path = loop.server.paths.primary
    assert server_path.network_path.local == PREFERRED and server_path.validated
    assert terminated(loop.server_events) is None and terminated(loop.client_events) is None


def test_unreachable_preferred_address_keeps_the_original_path() -> None:
    loop = routed_pair(listening=(SERVER_ADDR,), preferred_address_v4=PREFERRED)
    transfer(loop, 100_000)  # while the probes go unanswered
    loop.run_until(lambda: loop.client._pa_probe is None, max_time=loop.now + 10)
    assert loop.client._pa_probe is None
    assert PREFERRED in loop.client_sent_to  # it did try (PATH_CHALLENGE)
    assert loop.client.paths.primary.network_path.remote == SERVER_ADDR
    first = len(loop.client_sent_to)
    transfer(loop, 100_000)
    assert set(loop.client_sent_to[first:]) == {SERVER_ADDR}
    assert not any(isinstance(e, PathMigrated) for e in loop.client_events)


def test_client_configured_not_to_follow_stays_on_the_handshake_address() -> None:
    client = QuicConfiguration(is_client=True, verify_peer=False,
                               follow_preferred_address=False)
    loop = routed_pair(client=client, preferred_address_v4=PREFERRED)
    transfer(loop, 50_000)
    assert set(loop.client_sent_to) == {SERVER_ADDR}


def test_ipv4_client_ignores_an_ipv6_only_preferred_address() -> None:
    loop = routed_pair(preferred_address_v6=("2001:db8::1", 443))
    transfer(loop, 20_000)
    assert set(loop.client_sent_to) == {SERVER_ADDR}  # 10.0.0.x is IPv4: nothing to move to


def test_multipath_preferred_address_moves_path_0() -> None:
    client = QuicConfiguration(is_client=True, verify_peer=False, max_path_id=4)
    loop = routed_pair(client=client, preferred_address_v4=PREFERRED, max_path_id=4)
    assert loop.client.multipath_enabled
    assert loop.run_until(lambda: any(isinstance(e, PathMigrated) for e in loop.client_events),
                          max_time=loop.now + 5)
    migrated = [e for e in loop.client_events if isinstance(e, PathMigrated)]
    assert migrated[-1].path_id == 0  # multipath: the preferred CID is of path ID 0
    transfer(loop, 100_000)
    assert loop.client.paths.get(0).network_path.remote == PREFERRED  # type: ignore[union-attr]


# -- transport parameter rules (RFC 9000 §18.2) -------------------------------------------


def _close_code(loop: Loop, conn: Any) -> int | None:
    loop.run_until(lambda: conn.is_closed or terminated(
        loop.client_events if conn is loop.client else loop.server_events) is not None,
        max_time=3)
    event = terminated(loop.client_events if conn is loop.client else loop.server_events)
    return None if event is None else int(event.error_code)


def test_client_rejects_preferred_address_from_a_zero_length_cid_server() -> None:
    from tquic.core.connection import QuicConnection
    from tquic.wire.errors import QuicError

    client = QuicConnection(QuicConfiguration(is_client=True, verify_peer=False))
    client._peer_initial_scid = b""
    loop = routed_pair(preferred_address_v4=PREFERRED)
    params = loop.client._peer_params
    assert params is not None
    bad = TransportParameters(original_destination_connection_id=b"\x01" * 8,
                              initial_source_connection_id=b"",
                              preferred_address=params.preferred_address)
    with pytest.raises(QuicError) as info:
        client._validate_peer_params(bad)
    assert info.value.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR


def test_server_rejects_preferred_address_sent_by_a_client() -> None:
    from tquic.core.connection import QuicConnection
    from tquic.wire.errors import QuicError

    loop = routed_pair(preferred_address_v4=PREFERRED)
    params = loop.client._peer_params
    assert params is not None
    server = QuicConnection(server_config(), is_client=False)
    server._peer_initial_scid = b"\x02" * 8
    bad = TransportParameters(initial_source_connection_id=b"\x02" * 8,
                              preferred_address=params.preferred_address)
    with pytest.raises(QuicError) as info:
        server._validate_peer_params(bad)
    assert info.value.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR


def test_client_never_sends_preferred_address() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    assert loop.client._local_params.preferred_address is None
    assert loop.server._peer_params is not None
    assert loop.server._peer_params.preferred_address is None


@pytest.mark.parametrize(("field", "value", "words"), [
    ("preferred_address_v4", ("::1", 443), "not an IPv4"),
    ("preferred_address_v6", ("127.0.0.1", 443), "not an IPv6"),
    ("preferred_address_v4", ("0.0.0.0", 443), "cannot be a preferred"),
    ("preferred_address_v4", ("127.0.0.1", 0), "port 0"),
    ("preferred_address_v4", "localhost:443", "not an IP address"),
    ("preferred_address_v4", "127.0.0.1", "HOST:PORT"),
])
def test_bad_preferred_address_names_the_field(field: str, value: object, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        server_config(**{field: value})
    assert info.value.field_name == field and words in str(info.value)


def test_preferred_address_is_a_server_setting() -> None:
    with pytest.raises(ConfigurationError) as info:
        QuicConfiguration(is_client=True, preferred_address_v4=PREFERRED)
    assert info.value.field_name == "preferred_address_v4"


def test_preferred_address_accepts_host_port_strings() -> None:
    config = server_config(preferred_address_v4="192.0.2.1:4434",
                           preferred_address_v6="[2001:db8::1]:4434")
    assert config.preferred_address_v4 == ("192.0.2.1", 4434)
    assert config.preferred_address_v6 == ("2001:db8::1", 4434)

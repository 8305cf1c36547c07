"""The server's preferred address (RFC 9000 §9.6, §18.2), two engines in memory.

engine_pairs.routed_pair delivers every datagram to the address the engine put on it, so
a client that moves to the preferred address really reaches the server there
(and a preferred address nobody listens on really drops what is sent to it).
"""

from __future__ import annotations

import pytest
from engine_certs import server_config
from engine_fake_tls import rewriting_tls_factory
from engine_pairs import PREFERRED, make_pair, routed_pair, terminated, transfer

from tquic.core.cids import stateless_reset_token
from tquic.core.config import ConfigurationError, QuicConfiguration
from tquic.core.events import PathMigrated
from tquic.testing.engines import CLIENT_ADDR, SERVER_ADDR
from tquic.wire.errors import TransportErrorCode


def test_server_sends_preferred_address_with_cid_of_sequence_number_1() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    params = loop.client.peer_transport_parameters
    assert params is not None and params.preferred_address is not None
    address = params.preferred_address
    assert address.ipv4 == PREFERRED and address.ipv6 is None
    assert loop.server.local_cids()[0][1] == address.connection_id  # RFC 9000 §5.1.1
    key = loop.server.configuration.stateless_reset_key
    assert address.stateless_reset_token == stateless_reset_token(key, address.connection_id)
    assert address.connection_id in loop.server.host_cids  # routed by the endpoint


def test_client_validates_and_moves_to_the_preferred_address() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    loop.run_until(lambda: any(isinstance(e, PathMigrated) for e in loop.client_events),
                   timeout=5)
    client_path = loop.client.paths.primary
    assert client_path.network_path.remote == PREFERRED
    assert client_path.network_path.local == CLIENT_ADDR  # same local address (§9.6.1)
    params = loop.client.peer_transport_parameters
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
    loop.run_until(lambda: not loop.client.probing_preferred_address, timeout=10)
    assert not loop.client.probing_preferred_address
    assert PREFERRED in loop.client_sent_to  # it did try (PATH_CHALLENGE)
    assert loop.client.paths.primary.network_path.remote == SERVER_ADDR
    first = len(loop.client_sent_to)
    transfer(loop, 100_000)
    assert set(loop.client_sent_to[first:]) == {SERVER_ADDR}
    assert not any(isinstance(e, PathMigrated) for e in loop.client_events)
    # The unanswered probes were lost, but not in flight: the window of the path in use
    # did not shrink because of them (RFC 9000 §9.4).
    recovery = loop.client.paths.primary.recovery
    assert recovery.packets_lost >= 1
    assert getattr(recovery.controller, "ssthresh", float("inf")) == float("inf")


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
    loop.run_until(lambda: any(isinstance(e, PathMigrated) for e in loop.client_events),
                   timeout=5)
    migrated = [e for e in loop.client_events if isinstance(e, PathMigrated)]
    assert migrated[-1].path_id == 0  # multipath: the preferred CID is of path ID 0
    transfer(loop, 100_000)
    assert loop.client.paths.get(0).network_path.remote == PREFERRED  # type: ignore[union-attr]


# -- transport parameter rules (RFC 9000 §18.2) -------------------------------------------


def test_client_rejects_preferred_address_from_a_zero_length_cid_server() -> None:
    loop = make_pair(server_config=server_config(preferred_address_v4=PREFERRED),
                     tls_factory=rewriting_tls_factory(False, initial_source_connection_id=b""))
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    event = terminated(loop.client_events)
    assert event is not None and not event.by_peer
    assert event.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
    assert "preferred_address" in event.reason


def test_server_rejects_preferred_address_sent_by_a_client() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    params = loop.client.peer_transport_parameters
    assert params is not None
    loop = make_pair(tls_factory=rewriting_tls_factory(
        True, preferred_address=params.preferred_address))
    loop.run_until(lambda: terminated(loop.server_events) is not None, timeout=5)
    event = terminated(loop.server_events)
    assert event is not None and not event.by_peer
    assert event.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
    assert "preferred_address" in event.reason


def test_client_never_sends_preferred_address() -> None:
    loop = routed_pair(preferred_address_v4=PREFERRED)
    assert loop.client.local_transport_parameters.preferred_address is None
    assert loop.server.peer_transport_parameters is not None
    assert loop.server.peer_transport_parameters.preferred_address is None


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

"""QuicConfiguration.cipher_suites: validated at construction, handed to TLS, and the
suite both ends negotiate (RFC 9001 §5.3)."""

from __future__ import annotations

from typing import Any

import pytest
from engine_certs import server_config
from engine_pairs import handshake_pair

from tquic.core.config import ConfigurationError, QuicConfiguration
from tquic.crypto.keys import CipherSuite


def test_names_codepoints_and_members_are_normalised_in_order() -> None:
    c = QuicConfiguration(cipher_suites=("tls_chacha20_poly1305_sha256", 0x1302,
                                         CipherSuite.AES_128_GCM_SHA256))
    assert c.cipher_suites == (CipherSuite.CHACHA20_POLY1305_SHA256,
                               CipherSuite.AES_256_GCM_SHA384, CipherSuite.AES_128_GCM_SHA256)
    assert QuicConfiguration().cipher_suites is None


@pytest.mark.parametrize("bad", [(), ("AES_128_CCM_SHA256",), (0x1304,), (True,),
                                 ("AES_128_GCM_SHA256", 0x1301), "AES_128_GCM_SHA256"])
def test_bad_cipher_suites_are_refused_naming_the_field(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as err:
        QuicConfiguration(cipher_suites=bad)
    assert err.value.field_name == "cipher_suites"


@pytest.mark.parametrize("suite", list(CipherSuite))
def test_each_suite_is_negotiated_when_it_is_the_only_one(suite: CipherSuite) -> None:
    loop = handshake_pair(
        tls_factory=None,
        client_config=QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                        verify_peer=False, cipher_suites=(suite.name,)),
        server_config=server_config(cipher_suites=(suite,)))
    client: Any = loop.client
    server: Any = loop.server
    assert client.cipher_suite == suite and server.cipher_suite == suite


def test_server_preference_wins_among_the_clients_offer() -> None:
    loop = handshake_pair(
        tls_factory=None,
        client_config=QuicConfiguration(
            is_client=True, alpn_protocols=("hq",), verify_peer=False,
            cipher_suites=("AES_128_GCM_SHA256", "CHACHA20_POLY1305_SHA256")),
        server_config=server_config(cipher_suites=("CHACHA20_POLY1305_SHA256",
                                                   "AES_128_GCM_SHA256")))
    client: Any = loop.client
    assert client.cipher_suite == CipherSuite.CHACHA20_POLY1305_SHA256


def test_no_common_suite_fails_the_handshake() -> None:
    from engine_pairs import make_pair, terminated

    loop = make_pair(
        tls_factory=None,
        client_config=QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                        verify_peer=False, cipher_suites=("AES_128_GCM_SHA256",)),
        server_config=server_config(cipher_suites=("AES_256_GCM_SHA384",)))
    loop.run_until(lambda: terminated(loop.client_events) is not None, timeout=5)
    event = terminated(loop.client_events)
    assert event is not None and event.error_code == 0x100 + 40  # handshake_failure alert

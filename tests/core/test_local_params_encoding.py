"""Our transport parameters as sent: the part shared by every connection of a
configuration is encoded once (core/local_params.py); the
result must carry exactly what the general encoder writes (RFC 9000 §18: any order)."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from tquic.core.local_params import encode_local_parameters
from tquic.wire.params import (
    PreferredAddress,
    TransportParameters,
    VersionInformation,
    decode_transport_parameters,
    encode_transport_parameters,
)

BASE = TransportParameters(
    max_idle_timeout=30_000, initial_max_data=1 << 20, initial_max_stream_data_bidi_local=1 << 18,
    initial_max_streams_bidi=100, active_connection_id_limit=8,
    version_information=VersionInformation(1, (1, 0x6B3343CF)), max_datagram_frame_size=65535,
    grease_quic_bit=True, min_ack_delay=1000, initial_max_path_id=4)

PER_CONNECTION = [
    {"initial_source_connection_id": bytes(8)},  # a client's
    {"initial_source_connection_id": b"\x01" * 8, "original_destination_connection_id": b"\x02" * 8,
     "stateless_reset_token": b"\x03" * 16},  # a server's
    {"initial_source_connection_id": b"\x01" * 20, "original_destination_connection_id": b"\x02" * 8,
     "stateless_reset_token": b"\x03" * 16, "retry_source_connection_id": b"\x04" * 20},  # after Retry
    {"initial_source_connection_id": b"", "original_destination_connection_id": b"\x05" * 8},
]


@pytest.mark.parametrize("fields", PER_CONNECTION)
def test_encoding_decodes_to_the_same_parameters_as_the_general_encoder(
        fields: dict[str, bytes]) -> None:
    params = dataclasses.replace(BASE, **fields)
    for _ in range(2):  # the first call encodes the shared part, the second reuses it
        encoded = encode_local_parameters(params)
        assert decode_transport_parameters(encoded) == params
        assert len(encoded) == len(encode_transport_parameters(params))


def test_connections_of_one_configuration_keep_their_own_ids() -> None:
    first = dataclasses.replace(BASE, initial_source_connection_id=b"\x0a" * 8)
    second = dataclasses.replace(BASE, initial_source_connection_id=b"\x0b" * 8,
                                 max_idle_timeout=10_000)
    assert decode_transport_parameters(encode_local_parameters(first)) == first
    assert decode_transport_parameters(encode_local_parameters(second)) == second


def test_preferred_address_goes_through_the_general_encoder() -> None:
    address = PreferredAddress(ipaddress.IPv4Address("192.0.2.1"), 4433,
                               ipaddress.IPv6Address("::"), 0, b"\x07" * 8, b"\x08" * 16)
    params = dataclasses.replace(BASE, preferred_address=address,
                                 stateless_reset_token=b"\x03" * 16)
    assert encode_local_parameters(params) == encode_transport_parameters(params)


@pytest.mark.parametrize("fields", [
    {"initial_source_connection_id": b"\x01" * 21},
    {"stateless_reset_token": b"\x03" * 15},
    {"retry_source_connection_id": b"\x04" * 21},
])
def test_values_a_peer_would_reject_are_refused(fields: dict[str, bytes]) -> None:
    params = dataclasses.replace(BASE, **fields)
    with pytest.raises(ValueError):
        encode_transport_parameters(params)
    with pytest.raises(ValueError):
        encode_local_parameters(params)

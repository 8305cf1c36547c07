"""Transport parameters: RFC 9000 §7.4 / §18, RFC 9221, RFC 9287, RFC 9368,
ack-frequency and multipath extensions."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.wire.buffer import VARINT_MAX, encode_varint
from tquic.wire.errors import QuicDecodeError, TransportErrorCode
from tquic.wire.params import (
    PreferredAddress,
    TransportParameterId,
    TransportParameters,
    VersionInformation,
    check_peer_parameters,
    decode_transport_parameters,
    encode_transport_parameters,
    is_reserved_parameter_id,
)
from tquic.wire.version import QUIC_V1, QUIC_V2

TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR

# RFC 9001 Appendix A.2: the quic_transport_parameters extension in the client's
# ClientHello (extension 0x0039, 50 bytes).
RFC9001_CLIENT_PARAMS = bytes.fromhex(
    "0408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f08"
    "8394c8f03e51570806048000ffff"
)


def _param(parameter_id: int, value: bytes) -> bytes:
    return encode_varint(parameter_id) + encode_varint(len(value)) + value


def _error(data: bytes) -> QuicDecodeError:
    with pytest.raises(QuicDecodeError) as info:
        decode_transport_parameters(data)
    assert info.value.error_code == TPE
    return info.value


def test_rfc9001_a2_client_parameters_decode() -> None:
    params = decode_transport_parameters(RFC9001_CLIENT_PARAMS)
    assert params.initial_max_data == VARINT_MAX
    assert params.initial_max_stream_data_bidi_local == 65535
    assert params.initial_max_stream_data_bidi_remote == 65535
    assert params.initial_max_stream_data_uni == 65535
    assert params.initial_max_streams_bidi == 16
    assert params.initial_max_streams_uni == 16
    assert params.max_idle_timeout == 30000
    assert params.initial_source_connection_id == bytes.fromhex("8394c8f03e515708")
    # Absent parameters take the RFC 9000 §18.2 defaults.
    assert params.max_udp_payload_size == 65527
    assert params.ack_delay_exponent == 3
    assert params.max_ack_delay == 25
    assert params.active_connection_id_limit == 2
    assert params.unknown == ()
    check_peer_parameters(params, peer_is_server=False)


def test_rfc9001_a2_client_parameters_re_decode_identically_after_encoding() -> None:
    params = decode_transport_parameters(RFC9001_CLIENT_PARAMS)
    encoded = encode_transport_parameters(params)
    assert decode_transport_parameters(encoded) == params
    # Same parameters, same minimal values; only the order differs from the example.
    assert sorted(RFC9001_CLIENT_PARAMS) == sorted(encoded)


def test_extension_parameter_ids() -> None:
    assert int(TransportParameterId.MAX_DATAGRAM_FRAME_SIZE) == 0x20
    assert int(TransportParameterId.GREASE_QUIC_BIT) == 0x2AB2
    assert int(TransportParameterId.MIN_ACK_DELAY) == 0xFF04DE1B
    assert int(TransportParameterId.INITIAL_MAX_PATH_ID) == 0x3E
    assert int(TransportParameterId.VERSION_INFORMATION) == 0x11


# --- round trips ----------------------------------------------------------------------

cids = st.binary(max_size=20)
small_or_any = st.one_of(st.integers(min_value=0, max_value=70000),
                         st.integers(min_value=0, max_value=VARINT_MAX))
preferred_addresses = st.builds(
    PreferredAddress,
    st.builds(ipaddress.IPv4Address, st.integers(min_value=0, max_value=2**32 - 1)),
    st.integers(min_value=0, max_value=65535),
    st.builds(ipaddress.IPv6Address, st.integers(min_value=0, max_value=2**128 - 1)),
    st.integers(min_value=0, max_value=65535),
    st.binary(min_size=1, max_size=20),
    st.binary(min_size=16, max_size=16),
)
versions = st.integers(min_value=1, max_value=2**32 - 1)
unknown_ids = st.integers(min_value=0x40, max_value=VARINT_MAX).filter(
    lambda i: i not in {int(p) for p in TransportParameterId})


@st.composite
def transport_parameters(draw: st.DrawFn) -> TransportParameters:
    max_ack_delay = draw(st.integers(min_value=0, max_value=2**14 - 1))
    unknown_list = draw(st.lists(st.tuples(unknown_ids, st.binary(max_size=16)), max_size=3,
                                 unique_by=lambda t: t[0]))
    return TransportParameters(
        original_destination_connection_id=draw(st.none() | cids),
        max_idle_timeout=draw(small_or_any),
        stateless_reset_token=draw(st.none() | st.binary(min_size=16, max_size=16)),
        max_udp_payload_size=draw(st.integers(min_value=1200, max_value=VARINT_MAX)),
        initial_max_data=draw(small_or_any),
        initial_max_stream_data_bidi_local=draw(small_or_any),
        initial_max_stream_data_bidi_remote=draw(small_or_any),
        initial_max_stream_data_uni=draw(small_or_any),
        initial_max_streams_bidi=draw(st.integers(min_value=0, max_value=2**60)),
        initial_max_streams_uni=draw(st.integers(min_value=0, max_value=2**60)),
        ack_delay_exponent=draw(st.integers(min_value=0, max_value=20)),
        max_ack_delay=max_ack_delay,
        disable_active_migration=draw(st.booleans()),
        preferred_address=draw(st.none() | preferred_addresses),
        active_connection_id_limit=draw(st.integers(min_value=2, max_value=VARINT_MAX)),
        initial_source_connection_id=draw(st.none() | cids),
        retry_source_connection_id=draw(st.none() | cids),
        version_information=draw(st.none() | st.builds(
            VersionInformation, versions, st.lists(versions, max_size=4).map(tuple))),
        max_datagram_frame_size=draw(st.none() | small_or_any),
        initial_max_path_id=draw(st.none() | st.integers(min_value=0, max_value=2**32 - 1)),
        grease_quic_bit=draw(st.booleans()),
        min_ack_delay=draw(st.none() | st.integers(min_value=0,
                                                   max_value=max_ack_delay * 1000)),
        unknown=tuple(unknown_list),
    )


@settings(max_examples=300, deadline=None)
@given(transport_parameters())
def test_every_transport_parameter_set_round_trips(params: TransportParameters) -> None:
    assert decode_transport_parameters(encode_transport_parameters(params)) == params


def test_default_parameters_encode_to_nothing() -> None:
    assert encode_transport_parameters(TransportParameters()) == b""
    assert decode_transport_parameters(b"") == TransportParameters()


def test_flags_are_zero_length_values() -> None:
    encoded = encode_transport_parameters(
        TransportParameters(disable_active_migration=True, grease_quic_bit=True))
    assert encoded == _param(0x0C, b"") + _param(0x2AB2, b"")


def test_reserved_and_unknown_parameters_are_kept_not_interpreted() -> None:
    grease_id = 31 * 5 + 27
    assert is_reserved_parameter_id(grease_id)
    assert not is_reserved_parameter_id(0x0F)
    data = _param(grease_id, b"\xff\xfe") + _param(0x1234, b"") + _param(0x04, b"\x10")
    params = decode_transport_parameters(data)
    assert params.unknown == ((grease_id, b"\xff\xfe"), (0x1234, b""))
    assert params.initial_max_data == 16


def test_version_information_layout_follows_rfc9368() -> None:
    info = VersionInformation(QUIC_V2, (QUIC_V2, QUIC_V1))
    encoded = encode_transport_parameters(TransportParameters(version_information=info))
    assert encoded == _param(0x11, bytes.fromhex("6b3343cf" "6b3343cf" "00000001"))
    assert decode_transport_parameters(encoded).version_information == info


def test_preferred_address_layout_follows_rfc9000_figure_22() -> None:
    address = PreferredAddress(ipaddress.IPv4Address("192.0.2.1"), 443,
                               ipaddress.IPv6Address("::"), 0, b"\x01\x02", b"T" * 16)
    encoded = encode_transport_parameters(TransportParameters(preferred_address=address))
    value = bytes.fromhex("c0000201" "01bb") + bytes(16) + b"\x00\x00" + b"\x02\x01\x02" \
        + b"T" * 16
    assert encoded == _param(0x0D, value)
    decoded = decode_transport_parameters(encoded).preferred_address
    assert decoded == address
    assert decoded is not None
    assert decoded.ipv4 == ("192.0.2.1", 443)
    assert decoded.ipv6 is None


# --- every validity rule -> TRANSPORT_PARAMETER_ERROR -----------------------------------


@pytest.mark.parametrize(("name", "data"), [
    ("max_udp_payload_size below 1200", _param(0x03, encode_varint(1199))),
    ("ack_delay_exponent above 20", _param(0x0A, encode_varint(21))),
    ("max_ack_delay of 2^14", _param(0x0B, encode_varint(2**14))),
    ("active_connection_id_limit below 2", _param(0x0E, encode_varint(1))),
    ("initial_max_streams_bidi above 2^60", _param(0x08, encode_varint(2**60 + 1))),
    ("initial_max_streams_uni above 2^60", _param(0x09, encode_varint(2**60 + 1))),
    ("stateless_reset_token of 15 bytes", _param(0x02, bytes(15))),
    ("stateless_reset_token of 17 bytes", _param(0x02, bytes(17))),
    ("connection ID of 21 bytes", _param(0x0F, bytes(21))),
    ("original_destination_connection_id of 21 bytes", _param(0x00, bytes(21))),
    ("retry_source_connection_id of 21 bytes", _param(0x10, bytes(21))),
    ("disable_active_migration with a value", _param(0x0C, b"\x00")),
    ("grease_quic_bit with a value", _param(0x2AB2, b"\x01")),
    ("integer with trailing bytes", _param(0x04, b"\x01\x02")),
    ("empty integer", _param(0x01, b"")),
    ("truncated integer", _param(0x01, b"\x80\x01")),
    ("initial_max_path_id above 2^32-1", _param(0x3E, encode_varint(2**32))),
    ("min_ack_delay above max_ack_delay", _param(0x0B, encode_varint(10))
     + _param(0xFF04DE1B, encode_varint(10_001))),
    ("min_ack_delay above the default max_ack_delay",
     _param(0xFF04DE1B, encode_varint(25_001))),
    ("preferred_address with a zero-length CID",
     _param(0x0D, bytes(4 + 2 + 16 + 2) + b"\x00" + bytes(16))),
    ("preferred_address with a 21-byte CID",
     _param(0x0D, bytes(4 + 2 + 16 + 2) + b"\x15" + bytes(21 + 16))),
    ("preferred_address truncated", _param(0x0D, bytes(10))),
    ("preferred_address with trailing bytes",
     _param(0x0D, bytes(4 + 2 + 16 + 2) + b"\x01\x01" + bytes(17))),
    ("version_information empty", _param(0x11, b"")),
    ("version_information not a multiple of 4", _param(0x11, b"\x00\x00\x00\x01\x00")),
    ("version_information chosen version 0", _param(0x11, bytes(4))),
    ("version_information available version 0", _param(0x11, b"\x00\x00\x00\x01" + bytes(4))),
    ("duplicate parameter", _param(0x04, b"\x01") + _param(0x04, b"\x01")),
    ("duplicate unknown parameter", _param(0x1234, b"") + _param(0x1234, b"")),
    ("value longer than the data", encode_varint(0x04) + encode_varint(4) + b"\x01"),
    ("truncated ID", b"\x80\x00"),
])
def test_invalid_parameters_are_transport_parameter_errors(name: str, data: bytes) -> None:
    _error(data)


def test_boundary_values_are_accepted() -> None:
    data = (_param(0x03, encode_varint(1200)) + _param(0x0A, encode_varint(20))
            + _param(0x0B, encode_varint(2**14 - 1)) + _param(0x0E, encode_varint(2))
            + _param(0x08, encode_varint(2**60)) + _param(0x3E, encode_varint(2**32 - 1))
            + _param(0xFF04DE1B, encode_varint((2**14 - 1) * 1000)) + _param(0x0F, bytes(20)))
    params = decode_transport_parameters(data)
    assert params.max_udp_payload_size == 1200
    assert params.min_ack_delay == (2**14 - 1) * 1000
    assert params.initial_max_path_id == 2**32 - 1


@pytest.mark.parametrize("params", [
    TransportParameters(max_udp_payload_size=1000),
    TransportParameters(stateless_reset_token=b"short"),
    TransportParameters(initial_source_connection_id=bytes(21)),
    TransportParameters(min_ack_delay=26_000),
    TransportParameters(version_information=VersionInformation(0)),
    TransportParameters(unknown=((0x04, b"\x01"),)),
    TransportParameters(unknown=((0x99, b""), (0x99, b""))),
])
def test_parameters_a_peer_would_reject_are_not_encoded(params: TransportParameters) -> None:
    with pytest.raises(ValueError):
        encode_transport_parameters(params)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_decode_or_raise_transport_parameter_error(data: bytes) -> None:
    try:
        decode_transport_parameters(data)
    except QuicDecodeError as exc:
        assert exc.error_code == TPE


@settings(max_examples=300, deadline=None)
@given(transport_parameters(), st.data())
def test_mutated_parameters_decode_or_raise_transport_parameter_error(
    params: TransportParameters, data: st.DataObject
) -> None:
    encoded = bytearray(encode_transport_parameters(params))
    if encoded:
        index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
        encoded[index] = data.draw(st.integers(min_value=0, max_value=255))
        encoded = encoded[: data.draw(st.integers(min_value=0, max_value=len(encoded)))]
    try:
        decode_transport_parameters(bytes(encoded))
    except QuicDecodeError as exc:
        assert exc.error_code == TPE


# --- role rules (RFC 9000 §7.3, §18.2) ---------------------------------------------------

CLIENT = TransportParameters(initial_source_connection_id=b"c")
SERVER = TransportParameters(initial_source_connection_id=b"s",
                             original_destination_connection_id=b"o")


@pytest.mark.parametrize("server_only", [
    {"original_destination_connection_id": b"o"},
    {"retry_source_connection_id": b"r"},
    {"stateless_reset_token": bytes(16)},
    {"preferred_address": PreferredAddress(ipaddress.IPv4Address(0), 0,
                                           ipaddress.IPv6Address(0), 0, b"c", bytes(16))},
])
def test_client_sending_a_server_only_parameter_is_rejected(server_only: dict[str, object]
                                                             ) -> None:
    with pytest.raises(QuicDecodeError) as info:
        check_peer_parameters(replace(CLIENT, **server_only), peer_is_server=False)  # type: ignore[arg-type]
    assert info.value.error_code == TPE
    check_peer_parameters(replace(SERVER, **server_only), peer_is_server=True)  # type: ignore[arg-type]


def test_missing_connection_id_parameters_are_rejected() -> None:
    check_peer_parameters(CLIENT, peer_is_server=False)
    check_peer_parameters(SERVER, peer_is_server=True)
    for params, peer_is_server in [
        (TransportParameters(), False),
        (replace(SERVER, original_destination_connection_id=None), True),
        (replace(SERVER, initial_source_connection_id=None), True),
    ]:
        with pytest.raises(QuicDecodeError) as info:
            check_peer_parameters(params, peer_is_server=peer_is_server)
        assert info.value.error_code == TPE


def test_preferred_address_from_a_server_with_a_zero_length_cid_is_rejected() -> None:
    address = PreferredAddress(ipaddress.IPv4Address("192.0.2.1"), 443,
                               ipaddress.IPv6Address(0), 0, b"c", bytes(16))
    params = replace(SERVER, initial_source_connection_id=b"", preferred_address=address)
    with pytest.raises(QuicDecodeError) as info:
        check_peer_parameters(params, peer_is_server=True)
    assert info.value.error_code == TPE


def test_multipath_with_a_zero_length_connection_id_is_a_protocol_violation() -> None:
    check_peer_parameters(replace(CLIENT, initial_max_path_id=3), peer_is_server=False)
    params = TransportParameters(initial_source_connection_id=b"", initial_max_path_id=0)
    with pytest.raises(QuicDecodeError) as info:
        check_peer_parameters(params, peer_is_server=False)
    assert info.value.error_code == TransportErrorCode.PROTOCOL_VIOLATION

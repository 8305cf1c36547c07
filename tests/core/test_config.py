"""QuicConfiguration is validated at construction, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tquic.core.config import ConfigurationError, QuicConfiguration


@pytest.mark.parametrize(("field", "value"), [
    ("alpn_protocols", ("",)),
    ("alpn_protocols", ("x" * 300,)),
    ("versions", ()),
    ("versions", (0x12345678,)),
    ("idle_timeout", -1.0),
    ("initial_max_data", -5),
    ("max_streams_bidi", (1 << 60) + 1),
    ("congestion_control", "no-such-controller"),
    ("active_connection_id_limit", 1),
    ("connection_id_length", 21),
    ("ack_delay_exponent", 21),
    ("max_ack_delay", 20.0),
    ("max_udp_payload_size", 1000),
    ("token_key", b"short"),
    ("cafile", "/nonexistent/ca.pem"),
    ("datagram_queue_size", 0),
])
def test_bad_value_raises_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        QuicConfiguration(**{field: value})
    assert info.value.field_name == field


def test_maximum_windows_cannot_be_below_initial_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        QuicConfiguration(initial_max_data=10, max_data=5)
    assert info.value.field_name == "max_data"


def test_min_ack_delay_must_not_exceed_max_ack_delay() -> None:
    with pytest.raises(ConfigurationError) as info:
        QuicConfiguration(min_ack_delay=0.05, max_ack_delay=0.025)
    assert info.value.field_name == "min_ack_delay"


def test_a_server_needs_a_certificate() -> None:
    with pytest.raises(ConfigurationError) as info:
        QuicConfiguration(is_client=False)
    assert info.value.field_name == "certificate"


def test_configuration_is_frozen() -> None:
    config = QuicConfiguration()
    with pytest.raises(AttributeError):
        config.idle_timeout = 5.0  # type: ignore[misc]

"""Stream ID helpers (RFC 9000 §2.1) and StreamLimits (§3.2, §4.6, §19.11, §19.14)."""

from __future__ import annotations

import pytest

from tquic.core.stream_ids import (
    MAX_STREAMS_LIMIT,
    StreamLimits,
    can_receive,
    can_send,
    check_frame_direction,
    is_bidirectional,
    is_client_initiated,
    is_locally_initiated,
    is_server_initiated,
    is_unidirectional,
    make_stream_id,
    stream_index,
)
from tquic.wire.errors import QuicError, TransportErrorCode


def test_low_two_bits_give_initiator_and_direction() -> None:
    # RFC 9000 §2.1, Table 1
    assert is_client_initiated(0) and is_bidirectional(0)
    assert is_server_initiated(1) and is_bidirectional(1)
    assert is_client_initiated(2) and is_unidirectional(2)
    assert is_server_initiated(3) and is_unidirectional(3)
    assert is_client_initiated(8) and is_server_initiated(13)


def test_make_stream_id_round_trips_with_index() -> None:
    sid = make_stream_id(5, client_initiated=False, unidirectional=True)
    assert sid == 23
    assert stream_index(sid) == 5
    assert is_server_initiated(sid) and is_unidirectional(sid)


def test_unidirectional_streams_have_only_one_part() -> None:
    assert is_locally_initiated(2, is_client=True)
    assert can_send(2, is_client=True) and not can_receive(2, is_client=True)
    assert can_receive(2, is_client=False) and not can_send(2, is_client=False)
    assert can_send(0, True) and can_receive(0, True)


def test_stream_frame_on_our_send_only_stream_is_stream_state_error() -> None:
    with pytest.raises(QuicError) as info:
        check_frame_direction(2, True, for_receiving_part=True, frame_type=0x08)
    assert info.value.error_code == TransportErrorCode.STREAM_STATE_ERROR


def test_stop_sending_on_peers_send_only_stream_is_stream_state_error() -> None:
    with pytest.raises(QuicError) as info:
        check_frame_direction(3, True, for_receiving_part=False, frame_type=0x05)
    assert info.value.error_code == TransportErrorCode.STREAM_STATE_ERROR
    check_frame_direction(3, True, for_receiving_part=True, frame_type=0x08)  # fine


def test_opening_local_streams_stops_at_the_peers_limit() -> None:
    lim = StreamLimits(is_client=True, unidirectional=False, local_max=10, peer_max=2)
    assert lim.open_local() == 0
    assert lim.open_local() == 4
    assert lim.open_local() is None
    assert not lim.can_open_local


def test_blocked_local_opening_yields_streams_blocked_once_per_limit() -> None:
    lim = StreamLimits(is_client=False, unidirectional=True, local_max=10, peer_max=1)
    assert lim.take_blocked_signal() is None
    assert lim.open_local() == 3
    assert lim.open_local() is None
    assert lim.take_blocked_signal() == 1
    assert lim.take_blocked_signal() is None
    assert lim.on_max_streams(2)
    assert lim.open_local() == 7
    assert lim.take_blocked_signal() == 2


def test_max_streams_that_does_not_increase_is_ignored() -> None:
    lim = StreamLimits(is_client=True, unidirectional=False, local_max=10, peer_max=5)
    assert not lim.on_max_streams(3)
    assert lim.peer_max == 5


def test_max_streams_above_2_60_is_frame_encoding_error() -> None:
    lim = StreamLimits(is_client=True, unidirectional=True, local_max=10)
    assert lim.on_max_streams(MAX_STREAMS_LIMIT)
    with pytest.raises(QuicError) as info:
        lim.on_max_streams(MAX_STREAMS_LIMIT + 1)
    assert info.value.error_code == TransportErrorCode.FRAME_ENCODING_ERROR
    assert info.value.frame_type == 0x13


def test_initial_max_streams_above_2_60_is_transport_parameter_error() -> None:
    lim = StreamLimits(is_client=True, unidirectional=False, local_max=10)
    with pytest.raises(QuicError) as info:
        lim.on_max_streams(MAX_STREAMS_LIMIT + 1, from_transport_parameters=True)
    assert info.value.error_code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR


def test_streams_blocked_above_2_60_is_frame_encoding_error() -> None:
    lim = StreamLimits(is_client=True, unidirectional=False, local_max=10)
    lim.on_streams_blocked(MAX_STREAMS_LIMIT)
    with pytest.raises(QuicError) as info:
        lim.on_streams_blocked(MAX_STREAMS_LIMIT + 1)
    assert info.value.error_code == TransportErrorCode.FRAME_ENCODING_ERROR


def test_peer_stream_beyond_our_limit_is_stream_limit_error() -> None:
    lim = StreamLimits(is_client=False, unidirectional=False, local_max=3)
    lim.on_peer_frame(8)  # client bidi index 2: allowed
    with pytest.raises(QuicError) as info:
        lim.on_peer_frame(12, frame_type=0x08)  # index 3
    assert info.value.error_code == TransportErrorCode.STREAM_LIMIT_ERROR


def test_peer_stream_implicitly_opens_lower_numbered_streams() -> None:
    lim = StreamLimits(is_client=False, unidirectional=True, local_max=100)
    assert list(lim.on_peer_frame(10)) == [2, 6, 10]  # RFC 9000 §3.2
    assert list(lim.on_peer_frame(6)) == []  # opened already
    assert list(lim.on_peer_frame(18)) == [14, 18]


def test_frame_for_never_opened_local_stream_is_stream_state_error() -> None:
    lim = StreamLimits(is_client=True, unidirectional=False, local_max=10, peer_max=10)
    lim.open_local()  # stream 0
    assert list(lim.on_peer_frame(0)) == []
    with pytest.raises(QuicError) as info:
        lim.on_peer_frame(4, frame_type=0x11)
    assert info.value.error_code == TransportErrorCode.STREAM_STATE_ERROR
    assert info.value.frame_type == 0x11


def test_max_streams_is_raised_after_half_the_window_of_streams_closed() -> None:
    lim = StreamLimits(is_client=True, unidirectional=False, local_max=4)
    lim.on_peer_frame(13)  # server bidi streams 1, 5, 9, 13: all four used
    lim.on_remote_stream_closed()
    assert lim.max_streams_update() is None  # one closed: not worth a frame yet
    lim.on_remote_stream_closed()
    assert lim.max_streams_update() == 6
    assert lim.local_max == 6
    assert lim.max_streams_update() is None
    lim.on_peer_frame(21)  # index 5: now allowed


def test_max_streams_update_with_window_of_one_goes_stream_by_stream() -> None:
    lim = StreamLimits(is_client=True, unidirectional=True, local_max=1)
    lim.on_peer_frame(3)
    lim.on_remote_stream_closed()
    assert lim.max_streams_update() == 2

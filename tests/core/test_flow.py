"""SendCredit and ReceiveWindow (RFC 9000 §4.1, §4.2)."""

from __future__ import annotations

import pytest

from tquic.core.flow import ReceiveWindow, SendCredit
from tquic.wire.errors import QuicError, TransportErrorCode


def test_send_credit_tracks_available_bytes() -> None:
    c = SendCredit(1000)
    c.consume(400)
    assert c.available == 600
    assert not c.blocked
    c.consume(600)
    assert c.available == 0 and c.blocked


def test_consuming_more_than_the_credit_is_an_internal_error() -> None:
    c = SendCredit(10)
    with pytest.raises(QuicError) as info:
        c.consume(11)
    assert info.value.error_code == TransportErrorCode.INTERNAL_ERROR


def test_max_data_that_does_not_increase_the_limit_is_ignored() -> None:
    c = SendCredit(1000)
    assert c.raise_limit(2000)
    assert not c.raise_limit(1500)
    assert not c.raise_limit(2000)
    assert c.limit == 2000


def test_blocked_signal_is_produced_once_per_limit_value() -> None:
    c = SendCredit(100)
    assert c.take_blocked_signal() is None  # not blocked yet
    c.consume(100)
    assert c.take_blocked_signal() == 100
    assert c.take_blocked_signal() is None
    c.raise_limit(200)
    assert c.take_blocked_signal() is None
    c.consume(100)
    assert c.take_blocked_signal() == 200


def test_data_beyond_the_receive_window_is_flow_control_error() -> None:
    w = ReceiveWindow(1000)
    w.add_received(1000)
    with pytest.raises(QuicError) as info:
        w.add_received(1, frame_type=0x08)
    assert info.value.error_code == TransportErrorCode.FLOW_CONTROL_ERROR
    assert info.value.frame_type == 0x08


def test_no_update_while_more_than_half_the_window_remains() -> None:
    w = ReceiveWindow(1000)
    w.add_received(1000)
    w.add_consumed(500)
    assert w.should_send_update(0.0, 0.1) is None


def test_update_is_sent_when_remaining_window_drops_below_half() -> None:
    w = ReceiveWindow(1000)
    w.add_received(600)
    w.add_consumed(600)
    assert w.should_send_update(0.0, 0.1) == 1600
    assert w.limit == 1600
    assert w.should_send_update(0.0, 0.1) is None  # already advertised


def test_window_doubles_when_consumed_faster_than_two_rtts() -> None:
    w = ReceiveWindow(1000, max_window=8000)
    w.add_consumed(600)
    assert w.should_send_update(1.0, 0.1) == 1600  # first update: no history yet
    w.add_consumed(600)
    assert w.should_send_update(1.05, 0.1) == 1200 + 2000  # 50 ms < 2 RTT: doubled
    assert w.window == 2000


def test_window_does_not_grow_when_consumption_is_slow() -> None:
    w = ReceiveWindow(1000, max_window=8000)
    w.add_consumed(600)
    w.should_send_update(1.0, 0.1)
    w.add_consumed(600)
    assert w.should_send_update(1.5, 0.1) == 2200  # 500 ms > 2 RTT: same window
    assert w.window == 1000


def test_window_growth_stops_at_the_configured_maximum() -> None:
    w = ReceiveWindow(1000, max_window=3000)
    now = 0.0
    for _ in range(10):
        w.add_consumed(w.limit - w.consumed)
        w.should_send_update(now, 0.1)
        now += 0.01
    assert w.window == 3000
    assert w.limit == w.consumed + 3000


def test_max_window_below_initial_window_is_rejected() -> None:
    with pytest.raises(ValueError):
        ReceiveWindow(1000, max_window=500)

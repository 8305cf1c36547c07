"""WebTransport wire pieces: error-code mapping (§4.4), capsules (§5.6, §6), flow-control
accounting (§5) and the stream-header router (§4.2-4.3), fuzzed with hypothesis."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.h3.errors import H3Error
from tquic.h3.events import H3Event, StreamReset, WebTransportStreamDataReceived
from tquic.h3.webtransport.codes import (
    WT_APPLICATION_ERROR_FIRST,
    WT_APPLICATION_ERROR_LAST,
    WT_FLOW_CONTROL_ERROR,
    WT_MAX_DATA,
    WT_MAX_STREAMS_BIDI,
    CapsuleError,
    app_code_to_http,
    decode_close,
    decode_varint_value,
    encode_close,
    http_code_to_app,
)
from tquic.h3.webtransport.flow import FlowLimits, SessionFlow
from tquic.h3.wt_streams import WtStreamRouter
from tquic.wire.buffer import encode_varint


class FakeQuic:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes, bool]] = []
        self.resets: list[tuple[int, int]] = []
        self.stops: list[tuple[int, int]] = []
        self._next = {True: 0, False: 2}

    def open_stream(self, bidirectional: bool = True) -> int:
        stream_id = self._next[bidirectional]
        self._next[bidirectional] += 4
        return stream_id

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.sent.append((stream_id, data, end_stream))

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        self.resets.append((stream_id, error_code))

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        self.stops.append((stream_id, error_code))

    def send_datagram(self, data: bytes) -> None:
        pass

    def close(self, error_code: int = 0, reason: str = "", application: bool = True) -> None:
        pass


# -- §4.4 error codes ------------------------------------------------------------------

def test_error_mapping_ends_of_the_range_match_the_draft() -> None:
    assert app_code_to_http(0) == WT_APPLICATION_ERROR_FIRST
    assert app_code_to_http(0xFFFFFFFF) == WT_APPLICATION_ERROR_LAST
    assert http_code_to_app(WT_APPLICATION_ERROR_FIRST) == 0
    assert http_code_to_app(WT_APPLICATION_ERROR_LAST) == 0xFFFFFFFF
    assert http_code_to_app(0x170D7B68) is None  # WT_SESSION_GONE is not an application code
    with pytest.raises(ValueError):
        app_code_to_http(1 << 32)


@given(st.integers(0, 0xFFFFFFFF))
def test_error_mapping_round_trips_and_skips_reserved_codepoints(code: int) -> None:
    http = app_code_to_http(code)
    assert (http - 0x21) % 0x1F != 0, "a GREASE codepoint was used"
    assert http_code_to_app(http) == code


@given(st.integers(WT_APPLICATION_ERROR_FIRST, WT_APPLICATION_ERROR_LAST))
def test_every_http_code_in_range_maps_to_an_app_code_or_is_reserved(http: int) -> None:
    app = http_code_to_app(http)
    assert (app is None) == ((http - 0x21) % 0x1F == 0)
    if app is not None:
        assert app_code_to_http(app) == http


# -- §6 close capsule --------------------------------------------------------------------

def test_close_capsule_round_trip_and_truncation_at_a_character_boundary() -> None:
    info = decode_close(encode_close(42, "bye"))
    assert (info.code, info.reason) == (42, "bye")
    long = encode_close(1, "é" * 600)  # 1200 bytes of UTF-8
    assert len(long) - 4 == 1024 and decode_close(long).reason == "é" * 512


@pytest.mark.parametrize("value", [b"", b"\x00\x00\x01", b"\x00\x00\x00\x01\xff\xfe",
                                   b"\x00\x00\x00\x01" + b"a" * 1025])
def test_malformed_close_capsules_are_message_errors(value: bytes) -> None:
    with pytest.raises(CapsuleError) as caught:
        decode_close(value)
    assert caught.value.code == 0x10E  # H3_MESSAGE_ERROR (§6)


@given(st.binary(max_size=40), st.sampled_from([WT_MAX_DATA, WT_MAX_STREAMS_BIDI, 0x2843]))
def test_capsule_value_decoders_raise_only_capsule_error(value: bytes, ctype: int) -> None:
    for decode in (lambda: decode_close(value), lambda: decode_varint_value(ctype, value)):
        with contextlib.suppress(CapsuleError):
            decode()


def test_stream_count_above_2_to_the_60_is_a_flow_control_error() -> None:
    with pytest.raises(CapsuleError) as caught:
        decode_varint_value(WT_MAX_STREAMS_BIDI, encode_varint((1 << 60) + 1))
    assert caught.value.code == WT_FLOW_CONTROL_ERROR


# -- §5 flow control ------------------------------------------------------------------------

def test_flow_limits_block_then_grant_and_reject_a_peer_over_its_limit() -> None:
    flow = SessionFlow(FlowLimits(2, 1, 1000), FlowLimits(1, 0, 10))
    assert flow.can_open(True) and not flow.can_open(False)
    flow.on_open(True)
    assert not flow.can_open(True)
    assert flow.send_credit() == 10
    flow.on_sent(10)
    assert flow.send_credit() == 0 and flow.data_blocked() is not None
    assert flow.data_blocked() is None, "WT_DATA_BLOCKED once per limit"
    flow.on_peer_limit(WT_MAX_DATA, 50)
    assert flow.send_credit() == 40
    with pytest.raises(CapsuleError):
        flow.on_peer_limit(WT_MAX_DATA, 50)  # must increase (§5.6.4)
    flow.on_peer_stream(True)
    flow.on_peer_stream(True)
    with pytest.raises(CapsuleError) as caught:
        flow.on_peer_stream(True)
    assert caught.value.code == WT_FLOW_CONTROL_ERROR
    with pytest.raises(CapsuleError):
        flow.on_received(1001)


def test_flow_credit_is_returned_as_the_application_reads_and_streams_close() -> None:
    flow = SessionFlow(FlowLimits(2, 2, 100), FlowLimits(2, 2, 100))
    flow.on_received(60)
    assert flow.on_consumed(40) is None
    update = flow.on_consumed(20)
    assert update is not None and update[0] == WT_MAX_DATA and flow.local_max_data == 160
    flow.on_peer_stream(True)
    capsule = flow.on_peer_stream_closed(True)
    assert capsule is not None and flow.local_max_bidi == 3


# -- §4.2-4.3 stream headers ------------------------------------------------------------------

def test_router_takes_a_bidi_stream_with_the_signal_split_across_packets() -> None:
    router = WtStreamRouter(FakeQuic(), is_client=False)
    events: list[H3Event] = []
    head = encode_varint(0x41) + encode_varint(8)
    assert router.sniff_bidi(4, head[:1], False, events) is None and events == []
    router.on_data(4, head[1:] + b"hello", False, events)
    assert events == [WebTransportStreamDataReceived(4, 8, b"hello", False)]
    router.on_data(4, b"!", True, events)
    assert events[-1] == WebTransportStreamDataReceived(4, 8, b"!", True)


def test_router_hands_back_an_ordinary_request_stream() -> None:
    router = WtStreamRouter(FakeQuic(), is_client=False)
    frame = b"\x01\x03abc"  # HEADERS
    assert router.sniff_bidi(0, frame, False, []) == frame
    assert not router.tracks(0)


def test_router_rejects_a_session_id_that_is_not_a_client_bidi_stream() -> None:
    router = WtStreamRouter(FakeQuic(), is_client=False)
    with pytest.raises(H3Error) as caught:
        router.sniff_bidi(4, encode_varint(0x41) + encode_varint(2), False, [])
    assert caught.value.code == 0x108  # H3_ID_ERROR (§4)


def test_router_requires_the_signal_on_server_initiated_bidi_streams() -> None:
    router = WtStreamRouter(FakeQuic(), is_client=True)
    with pytest.raises(H3Error) as caught:
        router.sniff_bidi(1, b"\x01\x00", False, [])
    assert caught.value.code == 0x103  # H3_STREAM_CREATION_ERROR


def test_router_writes_headers_on_its_streams_and_reports_resets() -> None:
    quic = FakeQuic()
    router = WtStreamRouter(quic, is_client=True)
    bidi = router.open(0, True)
    uni = router.open(0, False)
    assert quic.sent == [(bidi, b"\x40\x41\x00", False), (uni, b"\x40\x54\x00", False)]
    events: list[H3Event] = []
    router.on_reset(bidi, 77, events)
    assert events == [StreamReset(bidi, 77, by_peer=True)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(1, 8), max_size=10), st.booleans())
def test_router_sniffing_fuzz_never_raises_anything_but_h3_error(
        data: bytes, cuts: list[int], uni: bool) -> None:
    router = WtStreamRouter(FakeQuic(), is_client=False)
    events: list[H3Event] = []
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(data[pos:pos + cut])
        pos += cut
    pieces.append(data[pos:])
    try:
        for index, piece in enumerate(pieces):
            fin = index == len(pieces) - 1
            if uni and index == 0:
                router.adopt_uni(2, piece, fin, events)
            elif uni or router.tracks(0):
                router.on_data(2 if uni else 0, piece, fin, events)
            elif router.sniff_bidi(0, piece, fin, events) is not None:
                break  # not a WebTransport stream: HTTP/3 takes it
    except H3Error:
        return
    body = b"".join(e.data for e in events if isinstance(e, WebTransportStreamDataReceived))
    assert len(body) <= len(data)


class FakeEndpoint:
    """What the hub uses of an HTTP/3 endpoint."""

    def __init__(self, is_client: bool) -> None:
        from tquic.h3.settings import H3Config

        self.h3: Any = type("H3", (), {})()
        self.h3.webtransport = WtStreamRouter(FakeQuic(), is_client)
        self.h3.config = H3Config(enable_datagrams=True, webtransport=True)
        self.h3.is_client = is_client
        self.closed: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def flush(self) -> None:
        pass


def test_client_closes_on_a_webtransport_setting_above_one() -> None:
    from tquic.h3.events import SettingsReceived
    from tquic.h3.webtransport.hub import WebTransportHub
    from tquic.h3.wt_streams import SETTING_WT_ENABLED

    endpoint = FakeEndpoint(is_client=True)
    hub = WebTransportHub(endpoint)
    assert hub.handle(SettingsReceived(((SETTING_WT_ENABLED, 2),)))
    assert endpoint.closed is not None and endpoint.closed[0] == 0x109  # H3_SETTINGS_ERROR
    ok = FakeEndpoint(is_client=True)
    hub = WebTransportHub(ok)
    assert not hub.handle(SettingsReceived(((SETTING_WT_ENABLED, 1),)))
    assert ok.closed is None and hub.client_version() is not None


def test_streams_for_unknown_sessions_are_buffered_then_refused() -> None:
    from tquic.h3.webtransport.codes import WT_BUFFERED_STREAM_REJECTED
    from tquic.h3.webtransport.hub import MAX_BUFFERED_STREAMS, WebTransportHub

    quic = FakeQuic()
    endpoint = FakeEndpoint(is_client=False)
    router = endpoint.h3.webtransport = WtStreamRouter(quic, False)
    hub = WebTransportHub(endpoint)
    for index in range(MAX_BUFFERED_STREAMS + 1):
        events: list[H3Event] = []
        router.sniff_bidi(4 + 4 * index, b"\x40\x41\x00x", False, events)
        for event in events:
            hub.handle(event)
    last = 4 + 4 * MAX_BUFFERED_STREAMS
    assert quic.stops == [(last, WT_BUFFERED_STREAM_REJECTED)]
    assert quic.resets == [(last, WT_BUFFERED_STREAM_REJECTED)]
    assert hub.refused_streams == 1

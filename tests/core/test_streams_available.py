"""StreamsAvailable: reported when MAX_STREAMS raises a limit the application used up
(RFC 9000 §4.6), so an application waits for an event instead of polling."""

from __future__ import annotations

import pytest
from engine_certs import server_config
from engine_pairs import handshake_pair

from tquic.core.config import QuicConfiguration
from tquic.core.events import StreamDataReceived, StreamsAvailable
from tquic.core.send_stream import StreamUsageError
from tquic.testing.engines import EnginePair


def _pair(max_streams: int) -> EnginePair:
    return handshake_pair(
        client_config=QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                        verify_peer=False),
        server_config=server_config(max_streams_bidi=max_streams, max_streams_uni=max_streams))


def _available(loop: EnginePair) -> list[StreamsAvailable]:
    return [e for e in loop.client_events if isinstance(e, StreamsAvailable)]


def _finished_at_server(loop: EnginePair, sid: int) -> bool:
    return any(isinstance(e, StreamDataReceived) and e.stream_id == sid and e.end_stream
               for e in loop.server_events)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_blocked_application_is_told_when_max_streams_raises_the_limit(
        bidirectional: bool) -> None:
    loop = _pair(2)
    client = loop.client
    opened = [client.open_stream(bidirectional) for _ in range(2)]
    with pytest.raises(StreamUsageError):
        client.open_stream(bidirectional)
    assert not _available(loop)
    for sid in opened:
        client.send_stream_data(sid, b"x", end_stream=True)
    loop.run_until(lambda: all(_finished_at_server(loop, s) for s in opened), timeout=5)
    if bidirectional:  # a bidirectional stream is done when the server's half ends too
        for sid in opened:
            loop.server.send_stream_data(sid, b"", end_stream=True)
    loop.run_until(lambda: bool(_available(loop)), timeout=5)
    event = _available(loop)[0]
    assert event.bidirectional is bidirectional and event.available >= 1
    sid = client.open_stream(bidirectional)  # works again, as the event promised
    client.send_stream_data(sid, b"again", end_stream=True)
    loop.run_until(lambda: _finished_at_server(loop, sid), timeout=5)


def test_no_event_when_the_application_still_had_streams_left() -> None:
    loop = _pair(4)
    opened = [loop.client.open_stream(False) for _ in range(3)]  # one of four left
    for sid in opened:
        loop.client.send_stream_data(sid, b"x", end_stream=True)
    loop.advance(1.0)
    assert loop.client.peer_max_streams(bidirectional=False) > 4  # MAX_STREAMS did arrive
    assert not _available(loop)

"""WebTransport data streams inside the HTTP/3 connection (sans-I/O).

draft-ietf-webtrans-http3 §4.2-4.3: a WebTransport stream is a QUIC stream
whose first bytes bind it to a session — ``0x54`` (unidirectional stream type)
or ``0x41`` (the WT_STREAM signal on a bidirectional stream), then the session
ID; everything after that header is application payload, with no HTTP/3
framing.  :class:`WtStreamRouter` recognises those headers on the peer's
streams, writes them on ours, and turns the payload into
:class:`~tquic.h3.events.WebTransportStreamDataReceived` events.  What a
session *is* (capsules, datagrams, close) lives in :mod:`tquic.h3.webtransport`.

Draft-02 (what Chromium and aioquic speak) uses the same two headers, so the
router does not need to know which draft a session negotiated.
"""

from __future__ import annotations

from tquic.h3.errors import H3Error, H3ErrorCode
from tquic.h3.events import (
    H3Event,
    StopSendingReceived,
    StreamReset,
    WebTransportStreamDataReceived,
)
from tquic.h3.frames import pull_varint
from tquic.h3.transport import QuicStreamTransport
from tquic.wire.buffer import encode_varint

WT_STREAM_SIGNAL = 0x41  # §4.3: first varint of a bidirectional WebTransport stream
WT_UNI_STREAM_TYPE = 0x54  # §4.2: HTTP/3 unidirectional stream type

# SETTINGS (§3.1, §9.2, and draft-ietf-webtrans-http3-02 §3.1 for the draft-02 one).
SETTING_WT_ENABLED = 0x2C7CF000
SETTING_ENABLE_WEBTRANSPORT_DRAFT02 = 0x2B603742
SETTING_WT_INITIAL_MAX_STREAMS_UNI = 0x2B64
SETTING_WT_INITIAL_MAX_STREAMS_BIDI = 0x2B65
SETTING_WT_INITIAL_MAX_DATA = 0x2B61
# The pre-RFC 9297 H3_DATAGRAM codepoint (draft-ietf-masque-h3-datagram-04) that
# Chromium still sends next to 0x33; we accept it as a synonym, never require it.
SETTING_H3_DATAGRAM_DRAFT04 = 0xFFD277

_UNI, _BIDI = 1, 2


class WtStreamRouter:
    """Which QUIC streams are WebTransport streams, and of which session.

    A peer stream stays in ``_sniff`` until its header is complete (a header
    is at most two 8-byte varints, so the buffer is bounded).  Entries are
    forgotten once both directions are over.
    """

    __slots__ = ("_is_client", "_quic", "_recv_done", "_send_done", "_session_of", "_sniff")

    def __init__(self, quic: QuicStreamTransport, is_client: bool) -> None:
        self._quic = quic
        self._is_client = is_client
        self._sniff: dict[int, tuple[int, bytes]] = {}  # stream -> (kind, header bytes so far)
        self._session_of: dict[int, int] = {}
        self._recv_done: set[int] = set()
        self._send_done: set[int] = set()

    def tracks(self, stream_id: int) -> bool:
        return stream_id in self._session_of or stream_id in self._sniff

    def session_of(self, stream_id: int) -> int | None:
        return self._session_of.get(stream_id)

    @property
    def open_streams(self) -> int:
        return len(self._session_of)

    # -- the peer's streams ----------------------------------------------------------

    def sniff_bidi(self, stream_id: int, data: bytes, fin: bool, events: list[H3Event]) -> bytes | None:
        """A new peer bidirectional stream.  Returns the bytes to process as an HTTP/3
        request stream when it is not a WebTransport stream, else None (taken, or
        waiting for the rest of its header)."""
        kind, head = self._sniff.pop(stream_id, (_BIDI, b""))
        buf = head + data
        signal, pos = pull_varint(buf, 0)
        server_initiated = bool(stream_id & 0x1)
        if signal < 0:
            if not fin:
                self._sniff[stream_id] = (kind, buf)
                return None
            return None if server_initiated else buf
        if signal != WT_STREAM_SIGNAL:
            if server_initiated:
                # RFC 9114 §6.1 / draft §4.3: a server-initiated bidi stream must be WT.
                raise H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR,
                              f"server bidi stream {stream_id} without the WT_STREAM signal")
            return buf
        self._take(stream_id, _BIDI, buf, pos, fin, events)
        return None

    def adopt_uni(self, stream_id: int, rest: bytes, fin: bool, events: list[H3Event]) -> None:
        """A peer unidirectional stream of type 0x54; ``rest`` follows the type."""
        self._take(stream_id, _UNI, rest, 0, fin, events)

    def on_data(self, stream_id: int, data: bytes, fin: bool, events: list[H3Event]) -> None:
        pending = self._sniff.pop(stream_id, None)
        if pending is not None:
            kind, head = pending
            if kind == _BIDI:
                # The signal was seen (else sniff_bidi would not have kept it) or not yet.
                rest = self.sniff_bidi(stream_id, head + data, fin, events)
                if rest is not None:
                    raise H3Error(H3ErrorCode.H3_INTERNAL_ERROR, "request stream misrouted")
                return
            self._take(stream_id, _UNI, head + data, 0, fin, events)
            return
        session_id = self._session_of.get(stream_id)
        if session_id is None or stream_id in self._recv_done:
            return
        events.append(WebTransportStreamDataReceived(stream_id, session_id, data, fin))
        if fin:
            self._finish(stream_id, recv=True)

    def on_reset(self, stream_id: int, error_code: int, events: list[H3Event]) -> None:
        if self._sniff.pop(stream_id, None) is not None:
            return  # reset before its header arrived: nothing to report (§4.4)
        if stream_id in self._session_of and stream_id not in self._recv_done:
            events.append(StreamReset(stream_id, error_code, by_peer=True))
            self._finish(stream_id, recv=True)

    def on_stop_sending(self, stream_id: int, error_code: int, events: list[H3Event]) -> None:
        if stream_id in self._session_of and stream_id not in self._send_done:
            events.append(StopSendingReceived(stream_id, error_code))
            self._finish(stream_id, send=True)  # the engine answered with RESET_STREAM

    def _take(self, stream_id: int, kind: int, buf: bytes, pos: int, fin: bool,
              events: list[H3Event]) -> None:
        session_id, body = pull_varint(buf, pos)
        if session_id < 0:
            if not fin:
                self._sniff[stream_id] = (kind, buf)
            return
        if session_id & 0x3:
            # §4: a session ID is always a client-initiated bidirectional stream ID.
            raise H3Error(H3ErrorCode.H3_ID_ERROR, f"session ID {session_id} on stream {stream_id}")
        self._session_of[stream_id] = session_id
        if kind == _UNI:
            self._send_done.add(stream_id)
        events.append(WebTransportStreamDataReceived(stream_id, session_id, buf[body:], fin))
        if fin:
            self._finish(stream_id, recv=True)

    # -- our streams -------------------------------------------------------------------

    def open(self, session_id: int, bidirectional: bool) -> int:
        """Open a stream bound to ``session_id`` and queue its header (§4.2, §4.3).

        Raises the engine's StreamUsageError when the peer's stream limit is reached.
        """
        stream_id = self._quic.open_stream(bidirectional=bidirectional)
        prefix = WT_STREAM_SIGNAL if bidirectional else WT_UNI_STREAM_TYPE
        self._quic.send_stream_data(stream_id, encode_varint(prefix) + encode_varint(session_id))
        self._session_of[stream_id] = session_id
        if not bidirectional:
            self._recv_done.add(stream_id)
        return stream_id

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream)
        if end_stream:
            self._finish(stream_id, send=True)

    def reset(self, stream_id: int, error_code: int) -> None:
        """RESET_STREAM (the engine has no RESET_STREAM_AT yet, so the header is not
        guaranteed to arrive: a peer that never saw it drops the stream, §4.4)."""
        if stream_id in self._session_of and stream_id not in self._send_done:
            self._quic.reset_stream(stream_id, error_code)
            self._finish(stream_id, send=True)

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        if stream_id in self._session_of and stream_id not in self._recv_done:
            self._quic.stop_sending(stream_id, error_code)
            self._finish(stream_id, recv=True)

    def _finish(self, stream_id: int, *, send: bool = False, recv: bool = False) -> None:
        if send:
            self._send_done.add(stream_id)
        if recv:
            self._recv_done.add(stream_id)
        if stream_id in self._send_done and stream_id in self._recv_done:
            self._send_done.discard(stream_id)
            self._recv_done.discard(stream_id)
            self._session_of.pop(stream_id, None)

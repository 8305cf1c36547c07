"""The WebTransport sessions of one HTTP/3 connection, and what arrives for them.

Created by the HTTP/3 endpoint (``tquic.h3.api``) when its H3Config has
``webtransport=True``; it sees every HTTP/3 event first and keeps the
WebTransport ones.  Streams for a session not known yet are buffered
(bounded; draft-ietf-webtrans-http3 §4.6): beyond the limit they are refused
with WT_BUFFERED_STREAM_REJECTED; streams for a session that is over are
refused with WT_SESSION_GONE.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from tquic.h3.errors import H3ErrorCode
from tquic.h3.events import (
    ConnectionTerminated,
    GoawayReceived,
    SettingsReceived,
    StopSendingReceived,
    StreamReset,
    WebTransportStreamDataReceived,
)
from tquic.h3.webtransport.codes import WT_BUFFERED_STREAM_REJECTED, WT_SESSION_GONE, WtVersion
from tquic.h3.webtransport.flow import FlowLimits
from tquic.h3.wt_streams import (
    SETTING_ENABLE_WEBTRANSPORT_DRAFT02,
    SETTING_WT_ENABLED,
    SETTING_WT_INITIAL_MAX_DATA,
    SETTING_WT_INITIAL_MAX_STREAMS_BIDI,
    SETTING_WT_INITIAL_MAX_STREAMS_UNI,
    WtStreamRouter,
)

if TYPE_CHECKING:
    from tquic.h3.webtransport.session import WebTransportSession

logger = logging.getLogger("tquic.h3.webtransport")

MAX_BUFFERED_STREAMS = 32
MAX_BUFFERED_EVENTS = 1024
_REMEMBERED_GONE = 256


def flow_limits(settings: dict[int, int]) -> FlowLimits:
    """The WT_INITIAL_* limits in a SETTINGS dict (§5.5)."""
    return FlowLimits(settings.get(SETTING_WT_INITIAL_MAX_STREAMS_BIDI, 0),
                      settings.get(SETTING_WT_INITIAL_MAX_STREAMS_UNI, 0),
                      settings.get(SETTING_WT_INITIAL_MAX_DATA, 0))


class WebTransportHub:
    """Sessions by ID, stream ownership, the peer's WebTransport SETTINGS."""

    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint
        router = endpoint.h3.webtransport
        if not isinstance(router, WtStreamRouter):
            raise ValueError("the HTTP/3 connection has no WebTransport router")
        self._router: WtStreamRouter = router
        self.sessions: dict[int, WebTransportSession] = {}
        self._owner: dict[int, WebTransportSession] = {}
        self._buffered: dict[int, list[object]] = {}  # session id -> events, in order
        self._buffered_streams: dict[int, int] = {}  # stream -> session id
        self._buffered_events = 0
        self._gone: deque[int] = deque(maxlen=_REMEMBERED_GONE)
        self.peer_settings: dict[int, int] | None = None
        self.settings_received = asyncio.Event()
        self.local_flow = flow_limits(dict(endpoint.h3.config.extra_settings))
        self.max_sessions = 16
        self.goaway = False
        self.refused_streams = 0

    # -- what was negotiated -----------------------------------------------------------

    def peer_flow(self) -> FlowLimits:
        return flow_limits(self.peer_settings or {})

    def flow_enabled(self, version: WtVersion) -> bool:
        """§5.1: both sides sent a non-zero WT_INITIAL_* setting (latest draft only)."""
        return (version is WtVersion.LATEST and self.local_flow.enabled
                and self.peer_flow().enabled)

    def client_version(self) -> WtVersion | None:
        """The draft to use with this server, from its SETTINGS (§3.1, §7.1)."""
        settings = self.peer_settings or {}
        if settings.get(SETTING_WT_ENABLED, 0) == 1:
            return WtVersion.LATEST
        if settings.get(SETTING_ENABLE_WEBTRANSPORT_DRAFT02, 0) == 1:
            return WtVersion.DRAFT02
        return None

    def session_capacity(self, version: WtVersion) -> bool:
        """Room for another session: one at a time without flow control (§5.1, §5.2),
        else up to ``max_sessions``.  Draft-02 had no such rule: ``max_sessions``."""
        active = len(self.sessions)
        if version is WtVersion.LATEST and not self.flow_enabled(version):
            return active == 0
        return active < self.max_sessions

    # -- sessions ----------------------------------------------------------------------

    def register(self, session: WebTransportSession) -> None:
        self.sessions[session.session_id] = session
        events = self._buffered.pop(session.session_id, [])
        for event in events:
            stream_id = getattr(event, "stream_id", -1)
            self._buffered_streams.pop(stream_id, None)
            self._buffered_events -= 1
            session.on_stream_event(event)

    def session_ended(self, session_id: int) -> None:
        if self.sessions.pop(session_id, None) is not None:
            self._gone.append(session_id)

    def own(self, stream_id: int, session: WebTransportSession) -> None:
        self._owner[stream_id] = session

    def disown(self, stream_id: int) -> None:
        self._owner.pop(stream_id, None)

    # -- events --------------------------------------------------------------------------

    def handle(self, event: object) -> bool:
        """Take a WebTransport event (True), or observe one the endpoint handles (False)."""
        if isinstance(event, WebTransportStreamDataReceived):
            self._stream_data(event)
            return True
        if isinstance(event, StreamReset | StopSendingReceived):
            owner = self._owner.get(event.stream_id)
            if owner is not None:
                owner.on_stream_event(event)
                return True
            session_id = self._buffered_streams.get(event.stream_id)
            if session_id is not None:
                self._buffer(session_id, event)
                return True
            return False
        if isinstance(event, SettingsReceived):
            self.peer_settings = dict(event.settings)
            logger.info("peer SETTINGS: %s", ", ".join(
                f"{ident:#x}={value}" for ident, value in event.settings))
            if self._endpoint.h3.is_client and (
                    self.peer_settings.get(SETTING_WT_ENABLED, 0) > 1
                    or self.peer_settings.get(SETTING_ENABLE_WEBTRANSPORT_DRAFT02, 0) > 1):
                # §3.1: a client treats values above 1 as H3_SETTINGS_ERROR.
                self._endpoint.close(H3ErrorCode.H3_SETTINGS_ERROR,
                                     "WebTransport setting above 1")
                return True
            self.settings_received.set()
        elif isinstance(event, GoawayReceived):
            self.goaway = True
            for session in list(self.sessions.values()):
                session.on_goaway()
        elif isinstance(event, ConnectionTerminated):
            self.settings_received.set()
            for session in list(self.sessions.values()):
                session.on_connection_closed(event.reason or f"connection closed ({event.error_code:#x})")
        return False

    def _stream_data(self, event: WebTransportStreamDataReceived) -> None:
        session = self._owner.get(event.stream_id) or self.sessions.get(event.session_id)
        if session is not None:
            session.on_stream_event(event)
            return
        if event.session_id in self._gone:
            self._refuse(event.stream_id, WT_SESSION_GONE)
            return
        if event.stream_id not in self._buffered_streams:
            if (len(self._buffered_streams) >= MAX_BUFFERED_STREAMS
                    or self._buffered_events >= MAX_BUFFERED_EVENTS):
                self._refuse(event.stream_id, WT_BUFFERED_STREAM_REJECTED)
                return
            self._buffered_streams[event.stream_id] = event.session_id
        elif self._buffered_events >= MAX_BUFFERED_EVENTS:
            self._refuse(event.stream_id, WT_BUFFERED_STREAM_REJECTED)
            return
        self._buffer(event.session_id, event)

    def _buffer(self, session_id: int, event: object) -> None:
        self._buffered.setdefault(session_id, []).append(event)
        self._buffered_events += 1

    def _refuse(self, stream_id: int, code: int) -> None:
        self.refused_streams += 1
        self._router.stop_sending(stream_id, code)
        if not stream_id & 0x2:
            self._router.reset(stream_id, code)
        self._endpoint.flush()

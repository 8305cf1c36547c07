"""WebTransport over HTTP/3 (draft-ietf-webtrans-http3, and draft-02 as Chromium and
aioquic speak it), with an asyncio API in the shape of the W3C WebTransport interface.

See docs/webtransport.md for a complete example.  Modules: ``codes`` (drafts, error
codes, capsules), ``flow`` (session flow control), ``streams`` and ``session`` (the
asyncio objects), ``hub`` (the sessions of one connection), ``aio`` (open / accept /
serve).  The stream headers themselves are parsed in :mod:`tquic.h3.wt_streams`.
"""

from tquic.h3.webtransport.aio import (
    WebTransportRefused,
    accept_session,
    connect_webtransport,
    is_webtransport_request,
    open_session,
    serve_webtransport,
    session_dispatcher,
    webtransport_h3_config,
)
from tquic.h3.webtransport.codes import CloseInfo, WtVersion, app_code_to_http, http_code_to_app
from tquic.h3.webtransport.flow import FlowLimits
from tquic.h3.webtransport.session import Datagrams, IncomingStreams, WebTransportSession
from tquic.h3.webtransport.streams import (
    SessionClosed,
    WebTransportBidirectionalStream,
    WebTransportError,
    WebTransportReceiveStream,
    WebTransportSendStream,
    WebTransportStreamError,
)

__all__ = [
    "CloseInfo", "Datagrams", "FlowLimits", "IncomingStreams", "SessionClosed",
    "WebTransportBidirectionalStream", "WebTransportError", "WebTransportReceiveStream",
    "WebTransportRefused", "WebTransportSendStream", "WebTransportSession",
    "WebTransportStreamError", "WtVersion", "accept_session", "app_code_to_http",
    "connect_webtransport", "http_code_to_app", "is_webtransport_request", "open_session",
    "serve_webtransport", "session_dispatcher", "webtransport_h3_config",
]

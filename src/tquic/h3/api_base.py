"""What the HTTP/3 client and server of :mod:`tquic.h3.api` share.

:class:`H3Endpoint` holds the :class:`~tquic.h3.connection.H3Connection`, flushes
after queuing data, routes tunnel and WebTransport events and waits for the
peer's SETTINGS; the request errors are here so that both sides raise the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tquic.h3.connection import H3Connection
from tquic.h3.errors import H3ErrorCode
from tquic.h3.events import (
    ConnectionTerminated,
    DatagramReceived,
    DataReceived,
    H3Event,
    SettingsReceived,
    StopSendingReceived,
    StreamReset,
)
from tquic.h3.messages import (
    Request,
    Response,
)
from tquic.h3.settings import H3Config
from tquic.h3.transport import QuicStreamTransport
from tquic.h3.tunnel import Tunnel

Transmit = Callable[[], None]
Handler = Callable[[Request], Awaitable[Response]]


class H3RequestError(Exception):
    """A request failed: its stream was reset, or the connection went away."""

    def __init__(self, message: str, error_code: int | None = None, *,
                 timed_out: bool = False) -> None:
        super().__init__(message)
        self.error_code = error_code
        # The connection ended by its own idle timeout (RFC 9000 §10.1): the peer went
        # silent, which a client reports as a timeout rather than a broken transfer.
        self.timed_out = timed_out

    @property
    def retryable(self) -> bool:
        """RFC 9114 §4.1.1: a rejected request was not processed and may be retried."""
        return self.error_code == H3ErrorCode.H3_REQUEST_REJECTED


class ConnectRefused(H3RequestError):
    """The peer answered a CONNECT with a non-2xx status."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"CONNECT refused with status {response.status}")
        self.response = response


class H3Endpoint:
    """What client and server share: the H3Connection, flushing, tunnels, settings."""

    def __init__(
        self, quic: QuicStreamTransport, transmit: Transmit, is_client: bool, config: H3Config | None
    ) -> None:
        self._h3 = H3Connection(quic, is_client, config)
        self._transmit = transmit
        self._tunnels: dict[int, Tunnel] = {}
        self._settings = asyncio.Event()
        self._terminated: ConnectionTerminated | None = None
        # The QuicConnectionProtocol when running on tquic.io (set by h3.aio.H3Bridge).
        self.protocol: Any = None
        # WebTransport sessions (tquic.h3.webtransport) see every event first.
        self.webtransport: Any = None
        if self._h3.webtransport is not None:
            from tquic.h3.webtransport.hub import WebTransportHub

            self.webtransport = WebTransportHub(self)
        self.flush()

    @property
    def h3(self) -> H3Connection:
        return self._h3

    @property
    def open_tunnels(self) -> tuple[int, ...]:
        """The stream IDs of the tunnels (extended CONNECT) open now, in order."""
        return tuple(sorted(self._tunnels))

    def flush(self) -> None:
        self._transmit()

    def quic_event_received(self, event: object) -> None:
        """Feed one engine event; dispatches the HTTP/3 events it produces."""
        h3_events = self._h3.handle_event(event)
        for h3_event in h3_events:
            self._dispatch(h3_event)
        if h3_events:
            self.flush()  # QPACK acknowledgements, resets, closes

    async def drain(self, stream_id: int) -> None:
        """Wait until the engine's send buffer for ``stream_id`` has room again.

        Uses the tquic.io protocol's stream writers (woken on every flush); with
        no protocol (engine driven by hand) there is nothing to wait for.
        """
        protocol = self.protocol
        if protocol is None:
            return
        await protocol.stream_writer(stream_id).drain()  # raises ConnectionClosedError (a ConnectionError) on close

    def forget_writer(self, stream_id: int, error: BaseException | None = None) -> None:
        """Drop the drain helper of a finished stream, waking a waiter with ``error``."""
        protocol = self.protocol
        if protocol is None:
            return
        writer = protocol.drop_writer(stream_id)
        if writer is not None and error is not None:
            writer.set_exception(error)

    def forget_tunnel(self, stream_id: int) -> None:
        """A tunnel whose both directions ended: its stream's events are no longer routed."""
        self._tunnels.pop(stream_id, None)

    async def wait_for_settings(self, timeout: float | None = None) -> None:
        """Wait for the peer's SETTINGS (needed before extended CONNECT)."""
        await asyncio.wait_for(self._settings.wait(), timeout)

    def shutdown(self) -> int:
        """Graceful shutdown: send GOAWAY (RFC 9114 §5.2); returns the id sent."""
        identifier = self._h3.send_goaway()
        self.flush()
        return identifier

    def close(self, error_code: int = H3ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        self._h3.close(error_code, reason)
        self.flush()

    def _dispatch(self, event: H3Event) -> None:
        if self.webtransport is not None and self.webtransport.handle(event):
            return
        if isinstance(event, SettingsReceived):
            self._settings.set()
        elif isinstance(event, DatagramReceived):
            tunnel = self._tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel.on_datagram(event.data)
        elif isinstance(event, ConnectionTerminated):
            self._terminated = event
            self._settings.set()
            for tunnel in list(self._tunnels.values()):
                tunnel.on_terminated(event.error_code)
            self._tunnels.clear()
            self._on_terminated(event)
        else:
            tunnel = self._tunnels.get(getattr(event, "stream_id", -1))
            if tunnel is not None and isinstance(event, DataReceived):
                tunnel.on_data(event.data, event.stream_ended)
            elif tunnel is not None and isinstance(event, StreamReset):
                tunnel.on_reset(event.error_code)
                self._tunnels.pop(event.stream_id, None)
            elif tunnel is not None and isinstance(event, StopSendingReceived):
                tunnel.on_stop_sending(event.error_code)  # §4.4: our direction is cancelled
            else:
                self._on_event(event)

    def _on_event(self, event: H3Event) -> None:
        raise NotImplementedError

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        raise NotImplementedError

"""HTTP/3 on the asyncio endpoint: ``connect_h3`` and ``serve_h3``.

``tquic.io`` drives one sans-I/O engine per :class:`QuicConnectionProtocol`
and turns stream events into reader/writer pairs.  HTTP/3 needs the raw
engine events instead, so :class:`H3Bridge` routes the stream, reset,
stop-sending and datagram events of one connection to an HTTP/3 endpoint
(:class:`~tquic.h3.api.H3Client` or :class:`~tquic.h3.api.H3Server`) and
leaves every other event (handshake, CIDs, paths, close) to the protocol.

The protocol has no public event hook yet, so the bridge replaces its
``_handle_event`` on the instance; when ``tquic.io`` grows a hook this is the
one place to change.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from tquic.core import events as ev
from tquic.core.config import QuicConfiguration
from tquic.core.send_stream import StreamUsageError
from tquic.h3.api import H3Client, H3Server, Handler, ServerTunnel, Transmit
from tquic.h3.settings import H3Config
from tquic.h3.transport import QuicStreamTransport
from tquic.io.futures import consume_result
from tquic.io.protocol import ConnectionClosedError

E = TypeVar("E", H3Client, H3Server)

H3_ALPN = "h3"  # RFC 9114 §3.1
_H3_EVENTS = (ev.StreamDataReceived, ev.StreamReset, ev.StopSendingReceived, ev.DatagramReceived)
# Largest DATAGRAM frame we accept when HTTP datagrams are on and the QUIC config left it unset.
_DEFAULT_DATAGRAM_FRAME = 65535


class H3Bridge(Generic[E]):
    """Connects one QuicConnectionProtocol to one HTTP/3 endpoint.

    The endpoint is created when the handshake completes (HTTP/3 opens its
    control and QPACK streams at once, which needs the peer's stream limits);
    stream events arriving earlier (0-RTT) wait in a backlog and are replayed.
    """

    def __init__(
        self,
        protocol: Any,
        factory: Callable[[QuicStreamTransport, Transmit], E],
        *,
        only_alpn: str | None = None,
    ) -> None:
        # ``only_alpn``: serve HTTP/3 only when the handshake chose this ALPN; any
        # other protocol gets the connection back untouched (a server offering
        # both "h3" and "hq-interop" decides per connection, RFC 7301 §3.2).
        self._only_alpn = only_alpn
        self._protocol = protocol
        self._factory: Callable[[QuicStreamTransport, Transmit], E] = factory
        self._endpoint: E | None = None
        self._backlog: list[object] = []
        self._flush_pending = False
        self._loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[E] = self._loop.create_future()
        self.ready.add_done_callback(consume_result)
        self._original = protocol._handle_event
        protocol._handle_event = self._on_event

    @property
    def endpoint(self) -> E | None:
        return self._endpoint

    def _on_event(self, event: object) -> None:
        endpoint = self._endpoint
        if isinstance(event, _H3_EVENTS):
            if endpoint is None:
                self._backlog.append(event)
            else:
                endpoint.quic_event_received(event)
            return
        self._original(event)
        if isinstance(event, ev.HandshakeCompleted) and endpoint is None:
            if self._only_alpn is not None and event.alpn_protocol != self._only_alpn:
                self._detach()
                return
            endpoint = self._endpoint = self._factory(self._protocol.quic, self._transmit)
            endpoint.protocol = self._protocol
            backlog, self._backlog = self._backlog, []
            for queued in backlog:
                endpoint.quic_event_received(queued)
            if not self.ready.done():
                self.ready.set_result(endpoint)
        elif isinstance(event, ev.ConnectionTerminated):
            if endpoint is not None:
                endpoint.quic_event_received(event)
            if not self.ready.done():
                # The close as tquic.io reports it (code, reason, who), so callers can
                # name a TLS alert (a ConnectionError subclass).
                self.ready.set_exception(
                    ConnectionClosedError(event.error_code, event.reason, event.by_peer)
                )

    def start_early(self) -> bool:
        """Client resuming with 0-RTT: start HTTP/3 now so requests leave in 0-RTT packets.

        RFC 9000 §7.4.1: the engine already applied the remembered stream limits,
        so the control/QPACK streams and requests can be opened before the
        handshake completes (RFC 9114 §7.2.4.2: SETTINGS defaults until the
        server's arrive).  Returns False (and waits for the handshake as usual)
        when the remembered limits leave no room.
        """
        if self._endpoint is not None:
            return True
        try:
            endpoint = self._factory(self._protocol.quic, self._transmit)
        except StreamUsageError:
            return False
        self._endpoint = endpoint
        endpoint.protocol = self._protocol
        if not self.ready.done():
            self.ready.set_result(endpoint)
        return True

    def _detach(self) -> None:
        """Give the connection back to the protocol, replaying what was held back."""
        self._protocol._handle_event = self._original
        backlog, self._backlog = self._backlog, []
        for queued in backlog:
            self._original(queued)
        if not self.ready.done():
            self.ready.cancel()

    def _transmit(self) -> None:
        # Coalesce: one protocol flush per loop iteration, outside event processing;
        # skipped if the protocol flushes meanwhile (tquic.io's request_flush).
        request = getattr(self._protocol, "request_flush", None)
        if request is not None:
            request()
            return
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self._protocol.flush()


def _h3_quic_config(config: QuicConfiguration, h3_config: H3Config, *, is_client: bool) -> QuicConfiguration:
    changes: dict[str, Any] = {"is_client": is_client}
    if H3_ALPN not in config.alpn_protocols:
        changes["alpn_protocols"] = (H3_ALPN, *config.alpn_protocols)
    if h3_config.enable_datagrams and config.max_datagram_frame_size is None:
        # RFC 9297 §2.1.1: HTTP datagrams need the QUIC DATAGRAM extension too.
        changes["max_datagram_frame_size"] = _DEFAULT_DATAGRAM_FRAME
    return dataclasses.replace(config, **changes)


async def connect_h3(
    host: str,
    port: int,
    config: QuicConfiguration | None = None,
    *,
    h3_config: H3Config | None = None,
    timeout: float | None = 30.0,
    **connect_kwargs: Any,
) -> H3Client:
    """Open a QUIC connection with ALPN "h3" and return an :class:`H3Client` on it.

    With a session ticket and ``enable_early_data`` in ``config``, the client is
    returned at once and its first requests travel in 0-RTT (resent in 1-RTT by
    the engine if the server rejects early data, RFC 9001 §4.6.2).
    """
    from tquic.io.api import connect

    h3_config = h3_config or H3Config()
    quic_config = _h3_quic_config(config or QuicConfiguration(), h3_config, is_client=True)
    protocol = await connect(
        host, port, quic_config, wait_connected=False, timeout=timeout, **connect_kwargs
    )
    bridge = H3Bridge(protocol, lambda quic, transmit: H3Client(quic, transmit, h3_config))
    early = quic_config.session_ticket is not None and quic_config.enable_early_data
    if early and bridge.start_early():
        # Return without yielding to the loop: requests the caller makes now are
        # queued before the server's handshake reply can be processed, so they
        # share the 0-RTT flight instead of racing it.
        return bridge.ready.result()
    try:
        return await asyncio.wait_for(bridge.ready, timeout)
    except BaseException:
        await protocol.__aexit__(None, None, None)
        raise


async def serve_h3(
    host: str,
    port: int,
    config: QuicConfiguration,
    handler: Handler,
    *,
    h3_config: H3Config | None = None,
    connect_handler: Callable[[ServerTunnel], Awaitable[None]] | None = None,
    **serve_kwargs: Any,
) -> Any:
    """Serve HTTP/3 on ``host:port``: ``handler(request) -> Response`` per request.

    Returns the ``tquic.io.api.QuicServer``.
    """
    from tquic.io.api import serve

    h3_config = h3_config or H3Config()
    quic_config = _h3_quic_config(config, h3_config, is_client=False)

    def make(quic: QuicStreamTransport, transmit: Transmit) -> H3Server:
        return H3Server(quic, transmit, handler, h3_config, connect_handler=connect_handler)

    def on_connection(protocol: Any) -> None:
        H3Bridge(protocol, make)

    return await serve(host, port, quic_config, None, connection_handler=on_connection, **serve_kwargs)

"""The asyncio API: ``tquic.connect`` and ``tquic.serve``.

Client::

    async with tquic.connect("example.com", 4433, config) as conn:
        reader, writer = await conn.open_stream()
        writer.write(b"GET /\\r\\n")
        writer.write_eof()
        body = await reader.read()

``connect`` returns an object that can be awaited (a connected
:class:`~tquic.io.protocol.QuicConnectionProtocol`) or used with ``async
with`` (closed on exit).

Server::

    async def handle(reader, writer):          # once per stream the client opens
        request = await reader.read()
        writer.write(b"reply")                 # FIN is sent when the handler returns

    server = await tquic.serve("::", 4433, config, handle)
    await server.serve_forever()

The handler runs once per peer-initiated stream, like ``asyncio.start_server``
runs once per TCP connection: a QUIC stream is the unit an application
serves.  Give ``connection_handler`` to see each connection as it arrives
(datagrams, server-initiated streams, session info); with no stream handler,
streams queue on ``conn.accept_stream()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any

from tquic.core.config import ConfigurationError, QuicConfiguration
from tquic.io.endpoint import EndpointLimits, QuicEndpoint, RetryPolicy, engine_class
from tquic.io.protocol import QuicConnectionProtocol, StreamHandler
from tquic.io.udp import UdpSocket, resolve_async
from tquic.paths.network_path import Address, NetworkPath
from tquic.qlog import QlogDirectory

logger = logging.getLogger("tquic.io")

ConnectionHandler = Callable[[QuicConnectionProtocol], object]


async def _connect(host: str, port: int, config: QuicConfiguration | None, *,
                   local_host: str, local_port: int, device: str | None,
                   qlog: QlogDirectory | None, stream_handler: StreamHandler | None,
                   wait_connected: bool, timeout: float | None) -> QuicConnectionProtocol:
    loop = asyncio.get_running_loop()
    if config is None:
        config = QuicConfiguration(is_client=True)
    if not config.is_client:
        raise ValueError("config: connect() needs a client configuration (is_client=True)")
    if config.server_name is None:
        # The name (or address) the certificate is checked against; the TLS layer
        # leaves IP literals out of SNI (RFC 6066 §3).
        config = dataclasses.replace(config, server_name=host)
    remote = await resolve_async(host, port)
    if local_host == "::" and ":" not in remote[0]:
        local_host = "0.0.0.0"  # an IPv4 peer: a plain IPv4 socket works everywhere
    sock = UdpSocket.bind(local_host, local_port, device=device)
    try:
        endpoint = QuicEndpoint(config, [sock], is_server=False, stream_handler=stream_handler,
                                loop=loop)
    except BaseException:
        sock.close()
        raise
    return await start_client_connection(endpoint, sock, remote, config, qlog=qlog,
                                         wait_connected=wait_connected, timeout=timeout)


async def start_client_connection(endpoint: QuicEndpoint, sock: UdpSocket, remote: Address,
                                  config: QuicConfiguration, *, qlog: QlogDirectory | None,
                                  wait_connected: bool,
                                  timeout: float | None) -> QuicConnectionProtocol:
    """Open a client connection from ``sock`` (already in ``endpoint``) to ``remote``.

    The endpoint is closed if the connection cannot start or does not complete its
    handshake within ``timeout`` (when ``wait_connected``).
    """
    loop = asyncio.get_running_loop()
    path = NetworkPath(sock.local_address, remote)
    try:
        quic_logger = None
        if qlog is not None:
            quic_logger = qlog.create(f"client-{sock.local_address[1]}-{id(sock):x}", "client")
            config = dataclasses.replace(config, quic_logger=quic_logger)
        engine = engine_class()(config, is_client=True)
        proto = endpoint.create_connection(engine, path, quic_logger)
        engine.connect(path, loop.time())
        proto.connection_made()
        if wait_connected:
            await asyncio.wait_for(proto.wait_connected(), timeout)
    except BaseException:
        endpoint.close()
        raise
    return proto


class _Connect:
    """``await connect(...)`` or ``async with connect(...) as conn``."""

    __slots__ = ("_conn", "_coro_args")

    def __init__(self, **kwargs: Any) -> None:
        self._coro_args = kwargs
        self._conn: QuicConnectionProtocol | None = None

    def __await__(self) -> Generator[Any, None, QuicConnectionProtocol]:
        return _connect(**self._coro_args).__await__()

    async def __aenter__(self) -> QuicConnectionProtocol:
        self._conn = await _connect(**self._coro_args)
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(exc_type, exc, tb)


def connect(host: str, port: int, config: QuicConfiguration | None = None, *,
            local_host: str = "::", local_port: int = 0, device: str | None = None,
            qlog_dir: str | None = None, qlog_format: str = "seq",
            stream_handler: StreamHandler | None = None, wait_connected: bool = True,
            timeout: float | None = 30.0) -> _Connect:
    """Open a QUIC connection to ``host:port``.

    ``local_host``/``device`` pin the socket to a source address / interface.
    ``wait_connected=False`` returns before the handshake completes (0-RTT:
    write at once).  ``timeout`` bounds the handshake (``TimeoutError``).
    """
    qlog = QlogDirectory(qlog_dir, fmt=qlog_format) if qlog_dir else None  # type: ignore[arg-type]
    return _Connect(host=host, port=port, config=config, local_host=local_host,
                    local_port=local_port, device=device, qlog=qlog,
                    stream_handler=stream_handler, wait_connected=wait_connected,
                    timeout=timeout)


class QuicServer:
    """A running server: its endpoint, sockets and connections."""

    def __init__(self, endpoint: QuicEndpoint) -> None:
        self.endpoint = endpoint
        self._closed = asyncio.get_running_loop().create_future()

    @property
    def local_address(self) -> tuple[str, int]:
        return self.endpoint.local_address

    @property
    def connections(self) -> set[QuicConnectionProtocol]:
        return self.endpoint.connections

    def close(self) -> None:
        self.endpoint.close()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        try:
            await self.wait_closed()
        finally:
            self.close()

    async def __aenter__(self) -> QuicServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def check_server_credentials(config: QuicConfiguration) -> None:
    """ConfigurationError naming ``certificate`` or ``private_key`` unless the server's
    pair can sign handshakes: checked once at start, so a swapped, mismatched or expired
    pair is one clear error instead of every client's handshake failing."""
    from tquic.crypto.tls.certs import CredentialError, check_credentials

    if config.certificate is None or config.private_key is None:
        return  # the handshake's own error (nothing to sign with) says so per client
    try:
        check_credentials(config.certificate, config.private_key)
    except CredentialError as exc:
        raise ConfigurationError(exc.which, str(exc)) from None


async def serve(host: str, port: int, config: QuicConfiguration,
                handler: StreamHandler | None = None, *,
                connection_handler: ConnectionHandler | None = None,
                retry: RetryPolicy | None = None, limits: EndpointLimits | None = None,
                qlog_dir: str | None = None, qlog_format: str = "seq",
                device: str | None = None, reuse_port: bool = False,
                sock: UdpSocket | None = None) -> QuicServer:
    """Listen on ``host:port`` ("::" = every IPv4 and IPv6 address) and serve QUIC.

    ``handler(reader, writer)`` runs once per stream a client opens; the
    stream's FIN is sent when it returns.  ``retry``: "auto" (the default:
    Retry while handshakes or new Initials cross the thresholds of ``limits``),
    "always" (validate every client address, RFC 9000 §8.1.2) or "never".
    ``sock``: serve on this bound socket instead of binding ``host:port`` (one
    worker of a SO_REUSEPORT group, tquic.io.workers).

    With ``config.preferred_address_v4``/``_v6`` (RFC 9000 §9.6) the server also
    listens there, and clients that follow the preferred address move to it
    after the handshake.
    """
    if config.is_client:
        config = dataclasses.replace(config, is_client=False)
    check_server_credentials(config)
    if limits is None:
        limits = EndpointLimits() if retry is None else EndpointLimits(retry=retry)
    elif retry is not None:
        limits = dataclasses.replace(limits, retry=retry)
    qlog = QlogDirectory(qlog_dir, fmt=qlog_format) if qlog_dir else None  # type: ignore[arg-type]
    # pktinfo: on a wildcard address, answer from the address each client sent to.
    sockets = [sock if sock is not None else
               UdpSocket.bind(host, port, device=device, reuse_port=reuse_port, pktinfo=True)]
    try:
        for preferred in (config.preferred_address_v4, config.preferred_address_v6):
            if preferred is not None and not any(
                    s.local_address == preferred for s in sockets):
                sockets.append(UdpSocket.bind(preferred[0], preferred[1], device=device,
                                              reuse_port=reuse_port))
        endpoint = QuicEndpoint(config, sockets, is_server=True, limits=limits, qlog=qlog,
                                stream_handler=handler, connection_handler=connection_handler)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return QuicServer(endpoint)

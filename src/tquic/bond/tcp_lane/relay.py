"""Bytes both ways between a TCP connection and an HTTP/3 CONNECT stream.

RFC 9114 §4.4 gives the rules, the same on the client (SOCKS / redirect
listener) and on the server (the onward connection):

- a FIN on one side becomes a FIN on the other, per direction (half-close: a
  TCP peer that shuts down its sending side still receives);
- a TCP error (a segment with RST, a failed write) resets the stream with
  H3_CONNECT_ERROR; a reset or stopped stream closes the TCP connection with
  RST (SO_LINGER 0), and the other direction of the stream is cancelled too.

Backpressure: TCP → stream waits for room in the QUIC send buffer
(``Tunnel.drain``) before reading more; stream → TCP waits for the socket's
write buffer (``StreamWriter.drain``) before taking the next piece.  The QUIC
engine returns flow-control credit as soon as it hands data to HTTP/3, so the
stream → TCP direction can still accumulate up to ``max_unread`` bytes when
the TCP side is slower than the bond; beyond that the stream is reset
(H3_EXCESSIVE_LOAD) rather than letting one connection use unbounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

from tquic.h3.errors import H3ErrorCode
from tquic.h3.tunnel import Tunnel

READ_CHUNK = 256 << 10  # one TCP read; a DATA frame each
DEFAULT_MAX_UNREAD = 32 << 20
_WRITE_HIGH = 64 << 10  # asyncio's default high-water mark: above it, drain() waits
_WATCH_INTERVAL = 0.05  # seconds between looks at the tunnel while the socket drains


@dataclass(frozen=True, slots=True)
class RelayResult:
    """What one relayed connection did."""

    sent: int  # TCP → stream bytes
    received: int  # stream → TCP bytes
    outcome: str  # "closed" (both FINs), "reset-by-tcp", "reset-by-peer", "overflow", "cancelled"


def reset_tcp(writer: asyncio.StreamWriter) -> None:
    """Close with RST (RFC 9114 §4.4: "the proxy SHOULD send a TCP segment with the RST
    bit set"): SO_LINGER with a zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Relay:
    __slots__ = ("max_unread", "outcome", "reader", "received", "sent", "tunnel", "writer")

    def __init__(self, tunnel: Tunnel, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, max_unread: int) -> None:
        self.tunnel = tunnel
        self.reader = reader
        self.writer = writer
        self.max_unread = max_unread
        self.sent = 0
        self.received = 0
        self.outcome = "closed"

    async def tcp_to_stream(self) -> None:
        reader, tunnel = self.reader, self.tunnel
        while True:
            try:
                data = await reader.read(READ_CHUNK)
            except OSError:  # ECONNRESET and friends: a TCP error
                self._fail("reset-by-tcp")
                return
            if not data:
                tunnel.close()  # TCP FIN → stream FIN
                return
            tunnel.send(data)
            self.sent += len(data)
            await tunnel.drain()

    async def stream_to_tcp(self) -> None:
        tunnel, writer = self.tunnel, self.writer
        while True:
            data = await tunnel.receive()
            if not data:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()  # stream FIN → TCP FIN (shutdown SHUT_WR)
                return
            try:
                writer.write(data)
                if writer.transport.get_write_buffer_size() > _WRITE_HIGH:
                    if not await self._drain_watching():
                        return
                else:
                    await writer.drain()  # returns at once below the high-water mark
            except OSError:
                self._fail("reset-by-tcp")
                return
            self.received += len(data)

    async def _drain_watching(self) -> bool:
        """Wait for the TCP socket to drain while watching what piles up in the tunnel
        meanwhile; False (and the stream reset) once that passes ``max_unread``."""
        drain = asyncio.ensure_future(self.writer.drain())
        try:
            while not drain.done():
                await asyncio.wait({drain}, timeout=_WATCH_INTERVAL)
                if self.tunnel.unread > self.max_unread:
                    self._fail("overflow", H3ErrorCode.H3_EXCESSIVE_LOAD)
                    return False
            drain.result()  # OSError when the connection broke
            return True
        finally:
            if not drain.done():
                drain.cancel()

    def _fail(self, outcome: str, code: int = H3ErrorCode.H3_CONNECT_ERROR) -> None:
        if self.outcome == "closed":
            self.outcome = outcome
        self.tunnel.abort(code)
        reset_tcp(self.writer)


async def relay(tunnel: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                max_unread: int = DEFAULT_MAX_UNREAD) -> RelayResult:
    """Relay until both directions ended; the TCP connection is closed on return."""
    state = _Relay(tunnel, reader, writer, max_unread)
    up = asyncio.ensure_future(state.tcp_to_stream())
    down = asyncio.ensure_future(state.stream_to_tcp())
    try:
        pending: set[asyncio.Future[None]] = {up, down}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.cancelled() or task.exception() is None:
                    continue  # finished (a FIN), or cancelled below after the other failed
                # A reset or stopped stream (TunnelClosed) or the connection gone.
                if state.outcome == "closed":
                    state.outcome = "reset-by-peer"
                tunnel.abort(H3ErrorCode.H3_CONNECT_ERROR)
                reset_tcp(writer)
                for other in pending:
                    other.cancel()
    except asyncio.CancelledError:
        state.outcome = "cancelled"
        tunnel.abort(H3ErrorCode.H3_CONNECT_ERROR)
        reset_tcp(writer)
        raise
    finally:
        for task in (up, down):
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if not writer.transport.is_closing():
            writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()
    return RelayResult(state.sent, state.received, state.outcome)

"""One QUIC connection on asyncio: drives the sans-I/O engine and is the object the
application holds (``await tquic.connect(...)`` returns one; ``tquic.serve`` hands
one to its connection handler).

The driver's loop is the sans-I/O contract of DESIGN.md: feed datagrams with
``receive_datagram``, react to ``next_event``, send ``datagrams_to_send``,
and keep one asyncio ``TimerHandle`` on ``next_timeout`` (rescheduled only
when the deadline moves).  Application calls (stream writes, datagrams,
close) mark the connection dirty and one ``flush`` runs per loop iteration, so
a burst of writes leaves in one batch of packets (skipped when another flush came
after the request: ``request_flush``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tquic.core import events as ev
from tquic.core.empty_queue import EMPTY, writable
from tquic.core.owner_ref import weak_callback
from tquic.core.send_stream import StreamUsageError
from tquic.io.deadline_timer import DeadlineTimer
from tquic.io.errors import ConnectionClosedError as ConnectionClosedError
from tquic.io.errors import MigrationError as MigrationError
from tquic.io.futures import cancel_all, consume_result
from tquic.io.qlog_trace import IoTrace
from tquic.io.stream_registry import StreamRegistry
from tquic.io.streams import QuicStreamReader, QuicStreamWriter, StreamError
from tquic.paths.network_path import Address, NetworkPath
from tquic.wire.errors import QuicError

if TYPE_CHECKING:
    from tquic.io.endpoint import QuicEndpoint
    from tquic.qlog import QuicLogger

logger = logging.getLogger("tquic.io")

StreamHandler = Callable[[QuicStreamReader, QuicStreamWriter], Awaitable[None]]
PathListener = Callable[[ev.Event], None]

# Engine events a path listener (``add_path_listener``) is told about.
_PATH_EVENTS = (ev.PathAvailable, ev.PathValidated, ev.PathStatusChanged, ev.PathFailed,
                ev.PathAbandoned, ev.PathMigrated)

# How long a closed connection keeps its routes so it can answer with
# CONNECTION_CLOSE / finish draining (RFC 9000 §10.2), at most.
_DRAIN_CAP = 10.0
# Longest a graceful close waits for the peer to acknowledge the last stream bytes.
_DELIVERY_WAIT_CAP = 2.0
# How long stream handlers of a finished connection may still run before cancellation.
_HANDLER_GRACE = 0.05


class QuicConnectionProtocol:
    """A live QUIC connection: streams, datagrams, close; driven by a QuicEndpoint.
    Its attributes are slots: no 1.6 KB instance dict per connection."""
    __slots__ = ("__dict__", "__weakref__", "_accept_q", "_closed", "_connected",
                 "_datagram_limit", "_datagram_waiter", "_datagrams", "_endpoint",
                 "_flush_listeners", "_flush_scheduled", "_heard", "_local_cids", "_loop",
                 "_migration", "_path_listeners", "_progress", "_quic", "_requested_epoch",
                 "_send_epoch", "_stream_handler", "_tasks", "_terminated", "_terminated_at",
                 "_timer", "_trace", "alpn_protocol", "early_data_accepted",
                 "handshake_completed_at", "is_client", "network_path", "new_token",
                 "session_resumed", "session_ticket", "started_at", "streams")

    def __init__(self, endpoint: QuicEndpoint, connection: Any, *, is_client: bool,
                 network_path: NetworkPath, stream_handler: StreamHandler | None = None,
                 quic_logger: QuicLogger | None = None) -> None:
        self._endpoint = endpoint
        self._loop = endpoint.loop
        self._quic = connection
        self.is_client = is_client
        self.network_path = network_path
        self._stream_handler = stream_handler
        self._trace = IoTrace(quic_logger) if quic_logger is not None else None
        self.streams = StreamRegistry(self, is_client=is_client)
        # Created on first use: an asyncio.Queue costs ~4 KB and most connections of
        # a server with a stream handler never need it (memory per idle connection).
        self._accept_q: asyncio.Queue[tuple[QuicStreamReader, QuicStreamWriter]] | None = None
        self._datagrams: deque[bytes] = EMPTY  # lazily created: see core/empty_queue.py
        self._datagram_limit = endpoint.config.datagram_queue_size
        self._datagram_waiter: asyncio.Future[None] | None = None
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        # Weakly, not to be a reference cycle (core/owner_ref.py); the endpoint holds us.
        self._timer = DeadlineTimer(self._loop, weak_callback(self._on_timer))
        self._flush_scheduled = False  # a _requested_flush callback is pending
        # Flushes that asked the engine for datagrams, and that count when the last
        # flush was requested: a requested flush after a later send has nothing to do.
        self._send_epoch = 0
        self._requested_epoch = 0
        self._heard = True  # a datagram since the last quiet_check (see quiet_check)
        self._progress: asyncio.Future[None] | None = None
        # migrate(): the path being validated and the future told the outcome.
        self._migration: tuple[NetworkPath, asyncio.Future[bool]] | None = None
        self._terminated: ConnectionClosedError | None = None
        self._terminated_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._local_cids: set[bytes] = set()
        self._path_listeners: list[PathListener] = []
        self._flush_listeners: list[Callable[[], None]] = []
        self.alpn_protocol: str | None = None
        self.session_resumed = False
        self.early_data_accepted = False
        self.session_ticket: object | None = None
        self.new_token: bytes | None = None
        self.handshake_completed_at: float | None = None
        self.started_at = self._loop.time()
        # Silence "exception never retrieved" for futures nobody awaits.
        self._connected.add_done_callback(consume_result)
        self._closed.add_done_callback(consume_result)

    # -- public API -----------------------------------------------------------------------

    @property
    def _accept_queue(self) -> asyncio.Queue[tuple[QuicStreamReader, QuicStreamWriter]]:
        if self._accept_q is None:
            self._accept_q = asyncio.Queue()
        return self._accept_q

    @property
    def quic(self) -> Any:
        """The sans-I/O engine (tquic.core.connection.QuicConnection), for advanced use."""
        return self._quic

    @property
    def remote_address(self) -> Address:
        return self.network_path.remote

    @property
    def local_address(self) -> Address:
        return self.network_path.local

    @property
    def is_closed(self) -> bool:
        return self._terminated is not None

    @property
    def close_error(self) -> ConnectionClosedError | None:
        """How the connection ended (code, reason, by whom); None while it is open."""
        return self._terminated

    async def wait_connected(self) -> None:
        """Wait for the handshake to complete; raises ConnectionClosedError if it fails."""
        await asyncio.shield(self._connected)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def add_path_listener(self, listener: PathListener) -> None:
        """Call ``listener(event)`` for every path event of the engine (PathAvailable,
        PathValidated, PathStatusChanged, PathFailed, PathAbandoned, PathMigrated), after
        the connection has handled it; e.g. ``tquic.io.path_keeper`` re-opens paths."""
        self._path_listeners.append(listener)

    def remove_path_listener(self, listener: PathListener) -> None:
        with contextlib.suppress(ValueError):
            self._path_listeners.remove(listener)

    def add_flush_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` in every flush between handling the engine's events and
        asking it for datagrams: what it queues leaves in that flush (a TUN's answer to
        what the events wrote goes with the QUIC ACKs of the batch: tquic.bond.tun)."""
        self._flush_listeners.append(listener)

    def remove_flush_listener(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._flush_listeners.remove(listener)

    async def open_stream(self, bidirectional: bool = True
                          ) -> tuple[QuicStreamReader, QuicStreamWriter]:
        """Open a stream; for a unidirectional one the reader is at EOF from the start."""
        blocked = False
        while True:
            self._check_open()
            try:
                stream_id = int(self._quic.open_stream(bidirectional=bidirectional))
                break
            except StreamUsageError:
                # The peer's MAX_STREAMS is used up (RFC 9000 §4.6): the engine has queued
                # STREAMS_BLOCKED; wait for the connection to make progress and try again.
                if not blocked:
                    blocked = True
                    self.request_flush()  # sends STREAMS_BLOCKED
                if self._progress is None:
                    self._progress = self._loop.create_future()
                waiters: list[asyncio.Future[None]] = [self._progress, self._closed]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        reader, writer = self.streams.create(stream_id)
        if not bidirectional:
            reader.feed_eof()
        return reader, writer

    async def accept_stream(self) -> tuple[QuicStreamReader, QuicStreamWriter]:
        """The next stream the peer opens (when no stream handler was given)."""
        if self._terminated is not None and self._accept_queue.empty():
            raise self._terminated
        getter = asyncio.ensure_future(self._accept_queue.get())
        try:
            waiters: list[asyncio.Future[Any]] = [getter, self._closed]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        raise self._terminated or ConnectionClosedError(0, "", False)

    def send_datagram(self, data: bytes, path_id: int | None = None) -> None:
        """Queue an unreliable DATAGRAM frame (RFC 9221); may be dropped under congestion.
        ``path_id``: the path it should prefer (multipath; not a guarantee)."""
        self._check_open()
        self._quic.send_datagram(data, path_id)
        self.request_flush()

    async def receive_datagram(self) -> bytes:
        """The next DATAGRAM frame payload from the peer."""
        while not self._datagrams:
            if self._terminated is not None:
                raise self._terminated
            if self._datagram_waiter is None:
                self._datagram_waiter = self._loop.create_future()
            waiters: list[asyncio.Future[None]] = [self._datagram_waiter, self._closed]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        return self._datagrams.popleft()

    def request_key_update(self) -> None:
        """Start a key update (RFC 9001 §6)."""
        self._check_open()
        self._quic.request_key_update()
        self.request_flush()

    async def migrate(self, local_host: str, local_port: int = 0, *,
                      device: str | None = None, timeout: float = 10.0) -> Address:
        """Client: move the connection to a new local address (RFC 9000 §9.2).

        Binds a UDP socket on ``local_host:local_port`` (optionally pinned to
        ``device``), sends from it with a new connection ID (§9.5) and validates
        the path (PATH_CHALLENGE/PATH_RESPONSE, §8.2).  Once validated the old
        socket is closed (unless another path still uses it) and the new local
        address is returned.  If validation fails the connection goes back to
        the old address (§9.3.2) and ``MigrationError`` is raised; so it is when
        migration is impossible (server disabled it, no spare connection ID, the
        address cannot be bound).
        """
        from tquic.io.udp import UdpSocket

        self._check_open()
        if not self.is_client:
            raise MigrationError("only a client migrates (RFC 9000 §9)")
        if self._migration is not None:
            raise MigrationError("a migration is already in progress")
        old_path = self.network_path
        try:
            sock = UdpSocket.bind(local_host, local_port, device=device)
        except OSError as exc:
            raise MigrationError(f"cannot bind {local_host}:{local_port}: "
                                 f"{exc.strerror or exc}") from None
        new_path = NetworkPath(sock.local_address, old_path.remote)
        try:
            self._endpoint.add_socket(sock)
        except RuntimeError as exc:
            sock.close()
            raise MigrationError(str(exc)) from None
        try:
            self._quic.migrate(new_path, self._loop.time(), path_id=0)
        except RuntimeError as exc:  # disabled by the server, no spare CID, no handshake
            self._endpoint.remove_socket(sock)
            raise MigrationError(f"cannot migrate: {exc}") from None
        outcome: asyncio.Future[bool] = self._loop.create_future()
        self._migration = (new_path, outcome)
        self.request_flush()
        try:
            waiters: list[asyncio.Future[Any]] = [outcome, self._closed]
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._migration = None
        validated = outcome.done() and outcome.result()
        if validated:
            self._release_socket(old_path.local)
            return new_path.local
        self._endpoint.remove_socket(sock)
        if self._terminated is not None:
            raise self._terminated
        raise MigrationError(f"path from {new_path.local[0]}:{new_path.local[1]} to "
                             f"{new_path.remote[0]}:{new_path.remote[1]} was not validated; "
                             f"the connection stays on {old_path.local[0]}:{old_path.local[1]}")

    def _release_socket(self, local: Address) -> None:
        """Close the socket of ``local`` unless a path of the connection still uses it."""
        if any(p.network_path.local == local for p in getattr(self._quic, "paths", ())
               if getattr(p, "usable", True)):
            return
        for sock in self._endpoint.sockets:
            if sock.local_address == local:
                self._endpoint.remove_socket(sock)

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Close with an application CONNECTION_CLOSE (idempotent)."""
        if self._terminated is None:
            self._quic.close(error_code=error_code, reason=reason, application=True)
            self.request_flush()

    async def __aenter__(self) -> QuicConnectionProtocol:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close as soon as what the application wrote is delivered, and return.

        CONNECTION_CLOSE goes on the wire before this returns.  The closing period
        (RFC 9000 §10.2.1: answer a late packet with another CONNECTION_CLOSE) then runs
        in the background for as long as the event loop lives; a client's endpoint, and
        its socket, close when it ends.  A process that exits instead closes the socket,
        which §10.2 allows ("able to close the UDP socket ... MAY end these states
        sooner"); either way nobody waits 3 x PTO for it.

        What the application wrote last (a request's end, a session's close capsule)
        is delivered first: the close waits until the peer acknowledged every stream
        byte, at most three PTOs.  A client that has received its download has nothing
        outstanding and closes at once.
        """
        await self.wait_delivered()
        self.close()
        if self._flush_scheduled:  # close() queued the CONNECTION_CLOSE: send it now
            self.flush()
        if self._trace is not None:
            self._trace.end(self._loop.time(), still_open=self._terminated is None)

    async def wait_delivered(self) -> None:
        """Wait until the peer has acknowledged every stream byte written (reset streams
        aside), at most three PTOs (2 s); at once when nothing is outstanding."""
        quic = self._quic
        pending = getattr(quic, "unacknowledged_stream_bytes", None)
        if pending is None or self._terminated is not None or not pending():
            return
        self.flush()
        deadline = self._loop.time() + min(_DELIVERY_WAIT_CAP, 3 * quic.pto)
        while self._terminated is None and pending():
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return
            if self._progress is None:
                self._progress = self._loop.create_future()
            await asyncio.wait([self._progress, self._closed], timeout=remaining,
                               return_when=asyncio.FIRST_COMPLETED)

    # -- stream plumbing used by the adapters ------------------------------------------------

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self._check_open()
        self._quic.send_stream_data(stream_id, data, end_stream=end_stream)
        self.request_flush()

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        if self._terminated is None:
            self._quic.reset_stream(stream_id, error_code)
            self.request_flush()

    def stream_writable(self, stream_id: int) -> bool:
        """Whether the engine's send buffer for ``stream_id`` has room."""
        if self._terminated is not None:
            return True  # drain() then raises the writer's error
        quic = self._quic
        probe = getattr(quic, "stream_writable", None)
        if probe is not None:
            return bool(probe(stream_id))
        stream = getattr(quic, "_send_streams", {}).get(stream_id)
        return stream is None or bool(stream.writable)

    def stream_writer(self, stream_id: int) -> QuicStreamWriter:
        """The writer of a stream the engine drives directly (an HTTP/3 layer's), created
        on first use: its ``drain()`` waits for send-buffer room, and STOP_SENDING or the
        connection's end reaches it."""
        return self.streams.writer(stream_id)

    def registered_writer(self, stream_id: int) -> QuicStreamWriter | None:
        """The stream's writer if one was created (``stream_writer``), else None."""
        return self.streams.writers.get(stream_id)

    def drop_writer(self, stream_id: int) -> QuicStreamWriter | None:
        """Forget a finished stream's writer; returns it (None if there was none)."""
        return self.streams.writers.pop(stream_id, None)

    def _check_open(self) -> None:
        if self._terminated is not None:
            raise self._terminated

    # -- driven by the endpoint -----------------------------------------------------------

    def quiet_check(self) -> None:
        """The endpoint's periodic sweep: release the engine's rebuildable state (the
        keys' OpenSSL contexts) if nothing was received since the previous sweep."""
        if self._heard:
            self._heard = False
            return
        release = getattr(self._quic, "release_idle_state", None)
        if release is not None:
            release()

    def datagram_received(self, data: bytes, path: NetworkPath, now: float,
                          ecn: int = 0) -> None:
        self._heard = True
        if self._trace is not None:
            self._trace.received(len(data))
        try:
            if ecn:  # RFC 9000 §13.4.1: the IP header's ECN field, counted by the engine
                self._quic.receive_datagram(data, path, now, ecn=ecn)
            else:
                self._quic.receive_datagram(data, path, now)
        except QuicError as exc:
            logger.debug("datagram from %s dropped: %s", path.remote, exc)
        except Exception:  # the engine must not raise for network input; never let it escape
            logger.debug("engine raised on a received datagram; dropped", exc_info=True)

    def request_flush(self) -> None:
        """Flush in the loop's next iteration (once however often this is called), unless
        a flush runs meanwhile: it considered what was queued (an HTTP/3 layer reacting to
        a received batch asked for one finding nothing, ~30 µs each on a bond tunnel)."""
        self._requested_epoch = self._send_epoch
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._requested_flush)

    def _requested_flush(self) -> None:
        self._flush_scheduled = False
        if self._send_epoch > self._requested_epoch:
            return  # a flush asked the engine for datagrams since the last request
        self.flush()

    def flush(self) -> None:
        """Process engine events, send what it has to send, re-arm the timer."""
        try:
            self._process_events()
            for listener in self._flush_listeners:
                listener()
            now = self._loop.time()
            self._send_epoch += 1
            datagrams = self._quic.datagrams_to_send(now)
            if datagrams:
                self._endpoint.send_datagrams(datagrams,
                                              getattr(self._quic, "ecn_codepoint", None))
            if self._trace is not None:
                self._trace.flush(now, datagrams, getattr(self._quic, "paths", ()))
            self._process_events()
            if self.streams.writers:
                self.streams.wake_writers(self.stream_writable)
            progress, self._progress = self._progress, None
            if progress is not None and not progress.done():
                progress.set_result(None)
            self._arm_timer()
        except Exception:
            logger.exception("connection driver failed; closing the connection")
            self._on_terminated(ev.ConnectionTerminated(0x1, None, "internal error", False))
            self._finish()

    def connection_made(self) -> None:
        """Called once the endpoint has routed the connection: first flush."""
        self.flush()

    def _arm_timer(self) -> None:
        deadline = self._quic.next_timeout()
        if self._terminated_at is not None and (
                deadline is None or self._loop.time() > self._terminated_at + _DRAIN_CAP):
            self._finish()
            return
        self._timer.set(deadline)

    def _on_timer(self) -> None:
        try:
            self._quic.handle_timeout(self._loop.time())
        except Exception:
            logger.exception("engine raised in handle_timeout")
        self.flush()

    def _finish(self) -> None:
        self._timer.cancel()
        # A stream handler still waiting (on something other than this connection's
        # streams, which have failed already) can never make progress: cancel it, or
        # it lingers until the garbage collector destroys it while pending.
        # Cancelled a moment later: a handler woken by the last events (a session closed
        # by the peer just before its CONNECTION_CLOSE, in the same read) gets to run
        # and see them, instead of being cancelled before it could.
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            self._loop.call_later(_HANDLER_GRACE, cancel_all, pending)
        self._endpoint.connection_finished(self, self._local_cids)
        if self._trace is not None:
            self._trace.close()
        if not self._closed.done():
            self._closed.set_result(None)

    # -- events ---------------------------------------------------------------------------

    def _process_events(self) -> None:
        quic = self._quic
        while (event := quic.next_event()) is not None:
            self._handle_event(event)
            if self._path_listeners and isinstance(event, _PATH_EVENTS):
                for listener in tuple(self._path_listeners):
                    try:
                        listener(event)
                    except Exception:  # a listener's bug must not stop the connection
                        logger.exception("path listener failed on %r", event)

    def _handle_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.StreamDataReceived):
            if (opened := self.streams.data_received(event)) is not None:
                self._announce(*opened)
        elif isinstance(event, ev.DatagramReceived):
            queue = self._datagrams = writable(self._datagrams)
            if len(queue) >= self._datagram_limit:
                queue.popleft()  # bounded: the oldest unreliable datagram goes
            queue.append(event.data)
            waiter, self._datagram_waiter = self._datagram_waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(event, ev.ConnectionIdIssued):
            self._local_cids.add(event.connection_id)
            self._endpoint.register_cid(event.connection_id, self)
        elif isinstance(event, ev.ConnectionIdRetired):
            self._local_cids.discard(event.connection_id)
            self._endpoint.unregister_cid(event.connection_id, self)
        elif isinstance(event, ev.HandshakeCompleted):
            self.alpn_protocol = event.alpn_protocol
            self.session_resumed = event.session_resumed
            self.early_data_accepted = event.early_data_accepted
            self.handshake_completed_at = self._loop.time()
            self._endpoint.handshake_done(self)
            if not self._connected.done():
                self._connected.set_result(None)
        elif isinstance(event, ev.StreamReset):
            if (opened := self.streams.reset(event)) is not None:
                self._announce(*opened)
        elif isinstance(event, ev.StopSendingReceived):
            self.streams.stop_sending(event)
        elif isinstance(event, ev.SessionTicketReceived):
            self.session_ticket = event.ticket
        elif isinstance(event, ev.NewTokenReceived):
            self.new_token = event.token
        elif isinstance(event, ev.PathValidated | ev.PathMigrated):
            self.network_path = event.network_path if event.path_id == 0 else self.network_path
            migration = self._migration
            if migration is not None and event.path_id == 0 and not migration[1].done():
                if isinstance(event, ev.PathValidated) and event.network_path == migration[0]:
                    migration[1].set_result(True)
                elif isinstance(event, ev.PathMigrated) and event.network_path != migration[0]:
                    migration[1].set_result(False)  # validation failed: back (§9.3.2)
            self._endpoint.path_changed(self, event.network_path)
            if self._trace is not None:
                self._trace.tuple_assigned(self._loop.time(), event.path_id,
                                           event.network_path)
        elif isinstance(event, ev.ConnectionTerminated):
            self._on_terminated(event)

    def _announce(self, reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
        """A stream the peer opened: to the stream handler, or to ``accept_stream``."""
        if self._stream_handler is not None:
            task = self._loop.create_task(self._run_handler(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._accept_queue.put_nowait((reader, writer))

    async def _run_handler(self, reader: QuicStreamReader, writer: QuicStreamWriter) -> None:
        handler = self._stream_handler
        if handler is None:
            return
        try:
            await handler(reader, writer)
        except (StreamError, ConnectionClosedError) as exc:
            logger.debug("stream %d handler ended: %s", reader.stream_id, exc)
        except Exception:
            logger.exception("stream handler failed on stream %d", reader.stream_id)
            if not writer.is_closing():
                writer.reset(0x101)  # an application error code: the handler failed
        else:
            if not writer.is_closing() and self._terminated is None:
                writer.write_eof()

    def _on_terminated(self, event: ev.ConnectionTerminated) -> None:
        if self._terminated is not None:
            return
        error = ConnectionClosedError(event.error_code, event.reason, event.by_peer)
        self._terminated = error
        self._terminated_at = self._loop.time()
        if not self._connected.done():
            self._connected.set_exception(error)
        self.streams.fail(error)
        waiter, self._datagram_waiter = self._datagram_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._trace is not None:
            self._trace.closed(self._loop.time(), event.by_peer, event.application,
                               event.error_code, event.reason)


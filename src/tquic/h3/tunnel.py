"""A CONNECT / extended CONNECT stream as an asyncio object: bytes, capsules and datagrams.

The base for MASQUE (CONNECT-UDP, CONNECT-IP) and WebTransport: after a 2xx
response the request stream carries tunnel data (RFC 9114 §4.4), usually
capsules (RFC 9297 §3), and HTTP Datagrams travel in QUIC DATAGRAM frames
tagged with the stream (RFC 9297 §2).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from tquic.h3.capsules import Capsule, CapsuleParser, encode_capsule
from tquic.h3.connection import H3Connection
from tquic.h3.errors import H3ErrorCode
from tquic.h3.messages import HeaderPairs


class TunnelClosed(ConnectionError):
    """The tunnel's stream was reset or its connection closed."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class _Owner(Protocol):
    @property
    def h3(self) -> H3Connection: ...

    def flush(self) -> None: ...

    async def drain(self, stream_id: int) -> None: ...

    def forget_writer(self, stream_id: int, error: BaseException | None = None) -> None: ...

    def forget_tunnel(self, stream_id: int) -> None: ...


class Tunnel:
    """One side of a CONNECT tunnel on request stream ``stream_id``.

    ``peer_headers``: the response head (client side) or the request head
    (server side).  Received datagrams wait in a bounded queue; when it is
    full the oldest is dropped (they are unreliable anyway, RFC 9297 §2).
    """

    def __init__(
        self, owner: _Owner, stream_id: int, peer_headers: HeaderPairs, max_datagrams: int = 256
    ) -> None:
        self._owner = owner
        self.stream_id = stream_id
        self.peer_headers = peer_headers
        self._data: deque[bytes] = deque()
        self._datagrams: deque[bytes] = deque(maxlen=max_datagrams)
        self._wakeup: asyncio.Event = asyncio.Event()
        self._ended = False
        self._error: TunnelClosed | None = None
        self._send_error: TunnelClosed | None = None  # STOP_SENDING: only our direction is gone
        self._fin_sent = False
        self._unread = 0
        self._capsules = CapsuleParser()
        self._capsule_queue: deque[Capsule] = deque()
        self.datagrams_dropped = 0

    # -- sending --------------------------------------------------------------------

    def send(self, data: bytes, end_stream: bool = False) -> None:
        """Tunnel bytes (DATA frames)."""
        self._check_send()
        self._owner.h3.send_data(self.stream_id, data, end_stream)
        self._owner.flush()
        if end_stream:
            self._sent_fin()

    async def drain(self) -> None:
        """Wait until the stream's send buffer has room (backpressure, like TCP's).

        Raises TunnelClosed when the stream is reset or stopped meanwhile.
        """
        self._check_send()
        await self._owner.drain(self.stream_id)
        self._check_send()

    def send_capsule(self, capsule_type: int, value: bytes) -> None:
        self.send(encode_capsule(capsule_type, value))

    def send_datagram(self, data: bytes, path_id: int | None = None) -> None:
        """An HTTP Datagram in a QUIC DATAGRAM frame (RFC 9297 §2.1); ``path_id``: the
        QUIC path it should prefer (multipath; not a guarantee)."""
        self._check()
        self._owner.h3.send_datagram(self.stream_id, data, path_id)
        self._owner.flush()

    def close(self) -> None:
        """End our direction of the tunnel cleanly (FIN)."""
        if self._error is None and self._send_error is None:
            self._owner.h3.send_data(self.stream_id, b"", end_stream=True)
            self._owner.flush()
            self._sent_fin()

    def _sent_fin(self) -> None:
        self._fin_sent = True
        self._owner.forget_writer(self.stream_id)
        self._maybe_finished()

    def _maybe_finished(self) -> None:
        """Both directions ended: the endpoint stops routing events here (no leak per
        tunnel on a long-lived connection)."""
        if self._error is not None or (self._fin_sent and self._ended) or (
                self._send_error is not None and self._ended):
            self._owner.forget_tunnel(self.stream_id)

    def abort(self, error_code: int = H3ErrorCode.H3_REQUEST_CANCELLED) -> None:
        self._owner.h3.cancel_stream(self.stream_id, error_code)
        self._owner.flush()
        self._fail(TunnelClosed("tunnel aborted locally", error_code))

    # -- receiving ------------------------------------------------------------------

    async def receive(self) -> bytes:
        """The next piece of tunnel data; b"" once the peer ended its direction."""
        while True:
            if self._data:
                data = self._data.popleft()
                self._unread -= len(data)
                return data
            if self._ended:
                return b""
            self._check()
            await self._wait()

    async def receive_capsule(self) -> Capsule | None:
        """The next capsule of the data stream (RFC 9297 §3.2); None at the end."""
        while not self._capsule_queue:
            data = await self.receive()
            if not data:
                self._capsules.finish()  # truncated capsule at FIN → malformed
                return None
            self._capsule_queue.extend(self._capsules.feed(data))
        return self._capsule_queue.popleft()

    async def receive_datagram(self) -> bytes:
        while True:
            if self._datagrams:
                return self._datagrams.popleft()
            self._check()
            await self._wait()

    # -- fed by the endpoint ---------------------------------------------------------

    def on_data(self, data: bytes, ended: bool) -> None:
        if data:
            self._data.append(data)
            self._unread += len(data)
        if ended:
            self._ended = True
            self._maybe_finished()
        self._wakeup.set()

    def on_datagram(self, data: bytes) -> None:
        if len(self._datagrams) == self._datagrams.maxlen:
            self.datagrams_dropped += 1
        self._datagrams.append(data)
        self._wakeup.set()

    def on_reset(self, error_code: int) -> None:
        self._fail(TunnelClosed(f"tunnel stream reset ({error_code:#x})", error_code))

    def on_terminated(self, error_code: int) -> None:
        self._fail(TunnelClosed(f"connection closed ({error_code:#x})", error_code))

    def on_stop_sending(self, error_code: int) -> None:
        """The peer stopped reading (STOP_SENDING): our direction is reset, theirs lives on."""
        if self._send_error is None:
            self._send_error = TunnelClosed(f"peer stopped reading ({error_code:#x})", error_code)
        self._owner.forget_writer(self.stream_id, self._send_error)
        self._maybe_finished()

    @property
    def unread(self) -> int:
        """Tunnel bytes received and not yet taken by ``receive()``."""
        return self._unread

    @property
    def send_closed(self) -> bool:
        """Whether sending is no longer possible (reset, stopped, aborted, closed)."""
        return self._error is not None or self._send_error is not None

    def _fail(self, error: TunnelClosed) -> None:
        if self._error is None:
            self._error = error
        self._owner.forget_writer(self.stream_id, error)
        self._owner.forget_tunnel(self.stream_id)
        self._wakeup.set()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _check_send(self) -> None:
        self._check()
        if self._send_error is not None:
            raise self._send_error

    async def _wait(self) -> None:
        self._wakeup.clear()
        await self._wakeup.wait()

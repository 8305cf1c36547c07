"""The control plane's listener: HTTP/1.1 on a Unix socket (0600) or TCP (token).

One request per connection (``Connection: close``), each bounded in size
(``http.Limits``) and time (``read_timeout``); at most ``max_connections``
at once, of which at most ``max_streams`` long-lived event streams (the
dashboards).  ``start_control`` is the one call a daemon makes:

    control = await start_control(view, steering, "/run/tquic/bond.sock")
    ...
    await control.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from tquic.control.api import ControlApi, Reply, error_reply
from tquic.control.http import HttpError, Limits, Request, RequestParser, response
from tquic.control.model import DaemonView, Steering
from tquic.control.sampler import Sampler, sse_message

__all__ = ["ControlPlane", "ControlTarget", "parse_control_target", "start_control"]

logger = logging.getLogger("tquic.control")

KEEPALIVE = 15.0  # seconds between SSE comments, so proxies keep the stream open
RECENT_EVENTS = 50  # events replayed to a new dashboard
_UNIX_PATH_MAX = 107  # sun_path is 108 bytes with the NUL


@dataclass(frozen=True, slots=True)
class ControlTarget:
    """Where to listen: ``path`` (a Unix socket) or ``host`` and ``port``."""

    path: str | None = None
    host: str | None = None
    port: int = 0

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        return f"[{self.host}]:{self.port}" if ":" in (self.host or "") else (
            f"{self.host}:{self.port}")


def parse_control_target(text: str) -> ControlTarget:
    """``/run/tquic/bond.sock`` or ``./x.sock`` (Unix socket), ``127.0.0.1:9180`` or
    ``[::1]:9180`` (TCP).  Raises ValueError saying what to write."""
    text = text.strip()
    if not text:
        raise ValueError("empty --control: give a socket path or ADDR:PORT")
    if "/" in text or text.endswith(".sock"):
        if len(os.fsencode(text)) > _UNIX_PATH_MAX:
            raise ValueError(f"socket path longer than {_UNIX_PATH_MAX} bytes: {text}")
        return ControlTarget(path=text)
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--control {text!r}: write a socket path (with a '/') or ADDR:PORT")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"--control {text!r}: {host!r} is not an IP address") from None
    return ControlTarget(host=host, port=int(port))


class ControlPlane:
    """A running control plane: the sampler, the API and its listener."""

    def __init__(self, api: ControlApi, *, max_connections: int = 64, max_streams: int = 16,
                 read_timeout: float = 10.0, limits: Limits | None = None) -> None:
        self.api = api
        self.sampler = api.sampler
        self.max_connections = max_connections
        self.max_streams = max_streams
        self.read_timeout = read_timeout
        self.limits = limits or Limits()
        self.target: ControlTarget | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._streams = 0
        self._bound_path: str | None = None  # the socket file we created (and remove)

    @property
    def address(self) -> str:
        """What a client passes to ``--control``: the socket path or ADDR:PORT."""
        if self.target is None:
            raise RuntimeError("not listening")
        if self.target.path is not None or self._server is None:
            return str(self.target)
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(ControlTarget(host=host, port=port))

    @property
    def url(self) -> str:
        """The dashboard's address (TCP only)."""
        return f"http://{self.address}/"

    async def listen(self, target: ControlTarget) -> None:
        self.sampler.start()
        self.target = target
        if target.path is not None:
            sock = _bind_unix(target.path)
            self._bound_path = target.path
            self._server = await asyncio.start_unix_server(self._accept, sock=sock)
        else:
            self._server = await asyncio.start_server(self._accept, target.host, target.port)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.sampler.stop()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2.0)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=2.0)
        path, self._bound_path = self._bound_path, None
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # -- one connection ----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task
            return
        self._connections.add(task)
        try:
            if len(self._connections) > self.max_connections:
                await _refuse(reader, writer, _error(503, "too many control connections; "
                                                          "try again"))
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # closing
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RequestParser(self.limits)
        try:
            request = await asyncio.wait_for(_read(reader, parser), timeout=self.read_timeout)
        except TimeoutError:
            await _refuse(reader, writer, _error(
                408, f"no complete request within {self.read_timeout:g} s"))
            return
        except HttpError as exc:
            await _refuse(reader, writer, _error(exc.status, exc.message))
            return
        if request is None:
            return  # closed before a request
        reply = await self.api.handle(request)
        head_only = request.method == "HEAD"
        if not reply.stream:
            await _send(writer, response(reply.status, reply.body, reply.content_type,
                                         reply.headers, head_only=head_only))
            return
        if self._streams >= self.max_streams:
            await _send(writer, _error(503, f"at most {self.max_streams} live dashboards"))
            return
        writer.write(response(200, content_type="text/event-stream", stream=True))
        if head_only:
            await writer.drain()
            return
        self._streams += 1
        try:
            await self._stream(writer)
        finally:
            self._streams -= 1

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        """Server-sent events: the current sample and recent events, then each new one."""
        sampler = self.sampler
        queue = sampler.subscribe()
        try:
            sample = sampler.current()
            writer.write(b"retry: 2000\n\n")
            for event in list(sampler.events)[-RECENT_EVENTS:]:
                writer.write(sse_message("log", event.to_json()).encode())
            writer.write(sse_message("sample", sample.live_json(), sample.seq).encode())
            await writer.drain()
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE)
                except TimeoutError:
                    writer.write(b": keepalive\n\n")
                else:
                    if message is None:
                        return  # too slow, or closing
                    writer.write(message.encode())
                await writer.drain()
        finally:
            sampler.unsubscribe(queue)


async def _read(reader: asyncio.StreamReader, parser: RequestParser) -> Request | None:
    while True:
        data = await reader.read(4096)
        if not data:
            if parser.started:
                raise HttpError(400, "connection closed in the middle of the request")
            return None
        request = parser.feed(data)
        if request is not None:
            return request


def _error(status: int, message: str) -> bytes:
    reply: Reply = error_reply(status, message)
    return response(reply.status, reply.body, reply.content_type)


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(data)
        await writer.drain()


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  data: bytes) -> None:
    """Answer a request we will not read, then let the client finish sending (briefly,
    boundedly): closing with unread input would reset the connection and lose the answer."""
    await _send(writer, data)
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(1.0):
            for _ in range(16):
                if not await reader.read(65536):
                    break


def _bind_unix(path: str) -> socket.socket:
    """A Unix socket only its owner may connect to (0600), created without a window in
    which it is more open, replacing a stale socket but never a live one or another file."""
    target = Path(path)
    if target.parent != Path(""):
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise OSError(f"{path} exists and is not a socket; remove it or choose another path")
        if _alive(path):
            raise OSError(f"another daemon is listening on {path}")
        target.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket file is created 0600
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.setblocking(False)
    return sock


def _alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def start_control(view: DaemonView, steering: Steering | None, target: str | ControlTarget,
                        *, token: str | None = None, interval: float = 1.0) -> ControlPlane:
    """Start the control plane of a daemon.  TCP needs a token (at least 16 characters);
    a Unix socket is protected by its 0600 permissions (a token there is optional)."""
    if isinstance(target, str):
        target = parse_control_target(target)
    if target.path is None and token is None:
        raise ValueError("a TCP control listener needs --control-token (or use a socket path)")
    plane = ControlPlane(ControlApi(Sampler(view, interval), steering, token=token))
    try:
        await plane.listen(target)
    except BaseException:
        await plane.close()
        raise
    logger.info("control: listening on %s", plane.address)
    return plane

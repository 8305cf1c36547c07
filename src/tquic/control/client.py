"""A small blocking client of the control API (what ``tquic bond status`` uses).

``ControlClient("/run/tquic/bond-client.sock")`` talks over the Unix socket,
``ControlClient("127.0.0.1:9180", token=...)`` or ``"http://host:port"`` over
TCP.  Every failure is a ``ControlClientError`` whose message says what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any

from tquic.control.server import ControlTarget, parse_control_target

__all__ = ["DEFAULT_DIR", "ControlClient", "ControlClientError", "default_target"]

DEFAULT_DIR = "/run/tquic"  # where the daemons put their sockets by default
ENV_TARGET = "TQUIC_CONTROL"
ENV_TOKEN = "TQUIC_CONTROL_TOKEN"


class ControlClientError(Exception):
    """The daemon could not be reached, or refused the request (``status`` then)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def default_target() -> str:
    """$TQUIC_CONTROL, else the only socket in /run/tquic."""
    env = os.environ.get(ENV_TARGET)
    if env:
        return env
    sockets = sorted(str(p) for p in Path(DEFAULT_DIR).glob("*.sock")) if Path(
        DEFAULT_DIR).is_dir() else []
    if len(sockets) == 1:
        return sockets[0]
    if not sockets:
        raise ControlClientError(f"no daemon socket in {DEFAULT_DIR}: give --control PATH or "
                                 f"ADDR:PORT (the daemon's --control), or set {ENV_TARGET}")
    raise ControlClientError(f"several daemons in {DEFAULT_DIR} ({', '.join(sockets)}): "
                             f"choose one with --control")


class ControlClient:
    def __init__(self, target: str | None = None, token: str | None = None,
                 timeout: float = 5.0) -> None:
        text = target if target is not None else default_target()
        if text.startswith("http://"):
            text = text[len("http://"):].split("/", 1)[0]
        elif text.startswith("https://"):
            raise ControlClientError("the control API speaks plain HTTP (use it over "
                                     "loopback or an SSH tunnel): write http:// or ADDR:PORT")
        try:
            self.target: ControlTarget = parse_control_target(text)
        except ValueError as exc:
            raise ControlClientError(str(exc)) from None
        self.token = token if token is not None else os.environ.get(ENV_TOKEN) or None
        self.timeout = timeout

    def __str__(self) -> str:
        return str(self.target)

    def _connection(self) -> http.client.HTTPConnection:
        if self.target.path is not None:
            return _UnixConnection(self.target.path, self.timeout)
        return http.client.HTTPConnection(self.target.host or "", self.target.port,
                                          timeout=self.timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer; raises ControlClientError on any failure."""
        headers = {"Accept": "application/json"}
        payload: bytes | None = None
        if body is not None or method not in ("GET", "HEAD"):
            payload = json.dumps(body if body is not None else {}).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        try:
            conn.request(method, path, body=payload, headers=headers)
            reply = conn.getresponse()
            raw = reply.read()
        except FileNotFoundError:
            raise ControlClientError(f"no daemon socket at {self.target}: is the daemon "
                                     f"running with --control {self.target}?") from None
        except PermissionError:
            raise ControlClientError(f"permission denied on {self.target}: the socket is "
                                     f"0600, run as the daemon's user (or root)") from None
        except ConnectionRefusedError:
            raise ControlClientError(f"nothing listens on {self.target}: is the daemon "
                                     f"running with --control {self.target}?") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ControlClientError(f"cannot talk to {self.target}: {exc}") from None
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        if reply.status == 200 and reply.getheader("Content-Type", "").startswith("text/plain"):
            return raw.decode("utf-8", "replace")
        try:
            value = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            raise ControlClientError(f"{self.target} answered {reply.status} with something "
                                     f"that is not JSON: is it a tquic daemon?",
                                     reply.status) from None
        if reply.status >= 400:
            message = value.get("error") if isinstance(value, dict) else None
            if reply.status == 401:
                message = (f"{message or 'unauthorised'}; give the daemon's token with "
                           f"--control-token or {ENV_TOKEN}")
            raise ControlClientError(message or f"HTTP {reply.status}", reply.status)
        return value

    def get(self, path: str) -> Any:
        return self.request("GET", path)

"""One URL of ``tquic client``: its result, how it failed (one line and an exit code,
numbered as curl numbers them), and the download around it, whatever the protocol.

Exit codes: :data:`EXIT_CODES_HELP` (also shown by ``tquic client --help``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path

from tquic.cli.common import describe_close
from tquic.cli.output import Download, OutputOptions
from tquic.core.events import is_idle_timeout
from tquic.io.protocol import ConnectionClosedError

EXIT_CODES_HELP = """\
Exit codes (the first failed URL's, in command-line order):

     0  every URL fetched
     1  other errors (bad URL, unreadable --ca, ...); 2: bad command-line usage
     6  could not resolve the host name
     7  could not connect: nobody answered the QUIC handshake, or the network refused
    18  the transfer broke off: stream reset or connection closed before the end
    22  the server answered an HTTP error status (4xx/5xx), or refused an hq-interop
        request (RESET_STREAM with the status as its code)
    23  could not write the output file
    28  no data for --timeout seconds in the middle of a transfer
    35  the TLS handshake failed (no common ALPN, cipher, version, ...)
    60  the server's certificate was not trusted (--ca FILE or --insecure)
"""

# RFC 8446 §6.2 alerts that mean "your certificate is not trusted" (as CONNECTION_CLOSE
# 0x100 + alert, RFC 9001 §4.8).
_CERTIFICATE_ALERTS = frozenset({42, 43, 44, 45, 46, 48})


class ExitCode(IntEnum):
    OK = 0
    OTHER = 1
    USAGE = 2
    RESOLVE = 6
    CONNECT = 7
    BROKE_OFF = 18
    HTTP_ERROR = 22
    WRITE = 23
    TIMEOUT = 28
    TLS = 35
    CERTIFICATE = 60


@dataclasses.dataclass(slots=True)
class Fetch:
    url: str
    host: str
    port: int
    path: str
    bytes: int = 0
    started: float = 0.0
    finished: float = 0.0
    sha256: str = ""
    error: str | None = None
    exit_code: int = ExitCode.OK
    status: int | None = None  # the HTTP status (h3)
    saved: str | None = None  # where the body went (with -o/-O)

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def mbps(self) -> float:
        return self.bytes * 8 / self.seconds / 1e6

    def fail(self, code: ExitCode, message: str) -> None:
        """Record the failure; the first one of a URL is the one reported."""
        if self.error is None:
            self.error, self.exit_code = message, int(code)


def close_exit_code(exc: ConnectionClosedError) -> ExitCode:
    """The exit code of a connection that closed during its handshake."""
    code = exc.error_code
    if 0x100 <= code <= 0x1FF:  # a TLS alert (RFC 9001 §4.8)
        return ExitCode.CERTIFICATE if code - 0x100 in _CERTIFICATE_ALERTS else ExitCode.TLS
    return ExitCode.CONNECT


def connect_failed(fetches: list[Fetch], host: str, port: int, exc: BaseException,
                   timeout: float, what: str = "a QUIC server") -> None:
    """Every fetch of a connection that could not be made fails with one message."""
    where = f"cannot connect to {host}:{port}"
    if isinstance(exc, TimeoutError):
        code, message = ExitCode.CONNECT, (f"{where}: no answer within {timeout:g} s "
                                           f"(is {what} listening there?)")
    elif isinstance(exc, ConnectionClosedError):
        code, message = close_exit_code(exc), f"{where}: {describe_close(exc)}"
    elif isinstance(exc, socket.gaierror):
        code, message = ExitCode.RESOLVE, f"cannot resolve host {host!r}: {exc.strerror or exc}"
    else:
        code, message = ExitCode.CONNECT, f"{where}: {getattr(exc, 'strerror', None) or exc}"
    fail_all(fetches, message, code)


def fail_all(fetches: list[Fetch], message: str, code: ExitCode = ExitCode.CONNECT) -> None:
    for fetch in fetches:
        fetch.fail(code, message)


def output_options(out: Path | OutputOptions | None) -> OutputOptions:
    return out if isinstance(out, OutputOptions) else OutputOptions(directory=out)


@contextlib.contextmanager
def fetching(fetch: Fetch, output: OutputOptions, timeout: float) -> Iterator[Download | None]:
    """One download, whatever the protocol (hq-interop or h3): yields its output file
    (None when nothing is saved), times it, turns the failures every protocol shares
    -- the connection closed, ``timeout`` seconds without data, the output not
    writable -- into ``fetch.fail``, and on the way out renames a whole download to its
    final name or says what a failed one left."""
    download: Download | None = None
    if output.directory is not None:
        try:
            download = Download(output, fetch.path)  # opens a FIFO target at once
        except OSError as exc:  # the fetch still runs (and is counted); it fails as 23
            fetch.fail(ExitCode.WRITE, f"cannot write output: {exc.strerror or exc}")
    try:
        fetch.started = time.perf_counter()
        yield download
    except ConnectionClosedError as exc:
        if is_idle_timeout(exc.reason, exc.by_peer):  # the server fell silent
            fetch.fail(ExitCode.TIMEOUT, f"no data for {timeout:g} s (idle timeout)")
        else:
            fetch.fail(ExitCode.BROKE_OFF, f"transfer broke off: {describe_close(exc)}")
    except TimeoutError:
        fetch.fail(ExitCode.TIMEOUT, f"no data for {timeout:g} s")
    except OSError as exc:
        fetch.fail(ExitCode.WRITE, f"cannot write output: {exc.strerror or exc}")
    finally:
        fetch.finished = time.perf_counter()
        if download is not None:
            _finish(fetch, download)


def _finish(fetch: Fetch, download: Download) -> None:
    try:
        if fetch.error is None:
            download.succeed()
            fetch.saved = str(download.final)
            return
        note = download.fail(http_error=fetch.exit_code == ExitCode.HTTP_ERROR)
    except OSError as exc:
        fetch.fail(ExitCode.WRITE, f"cannot write output: {exc.strerror or exc}")
        return
    if note is not None and fetch.error is not None:
        fetch.error += f"; {note}"

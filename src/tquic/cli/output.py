"""Where ``tquic client`` puts what it downloads, so that a file under its final name
is always a whole, successful download.

The body is written to ``NAME.part`` beside the final name and renamed to ``NAME``
only when the transfer completed with a 2xx status (an atomic rename on POSIX).
So:

- an error status (404, ...) never leaves a file, and never touches an existing
  ``NAME``; ``--keep-error-body`` keeps the body, in ``NAME`` if that is free, else
  in ``NAME.error``;
- a transfer that breaks off leaves its bytes in ``NAME.part`` (nothing under
  ``NAME``), and ``-C -`` resumes from there with ``Range: bytes=SIZE-``
  (RFC 9110 §14.2).  ``-C -`` also resumes a ``NAME`` left by another tool: it
  moves to ``NAME.part`` once the server answers 206 and grows there;
- a resume the server answers 416 with ``content-range: bytes */SIZE`` equal to
  what we have is complete already (curl's behaviour too).

A ``NAME`` that already exists as a FIFO or a device (a reader waiting on a pipe,
``/dev/null``) cannot be renamed over: the 2xx body streams straight into it,
opened before the request as always.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tquic.h3.messages import HeaderPairs, header_value

PART = ".part"
_CONTENT_RANGE = re.compile(rb"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED = re.compile(rb"bytes \*/(\d+)")


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """``-o/--output-dir DIR`` or ``-O`` (directory), ``--keep-error-body``, ``-C -``."""

    directory: Path | None = None  # None: the bodies are only counted and hashed
    keep_error_body: bool = False
    resume: bool = False


def remote_name(path: str) -> str:
    """The file name a URL path is saved under (``-O``): its last segment."""
    name = Path(path.split("?", 1)[0]).name
    return name if name not in ("", ".", "..") else "index.html"


class OutputError(Exception):
    """The output could not be written (disk full, permissions): exit code 23."""


class Download:
    """One URL's output file (see the module text).  Call :meth:`begin` with the response
    status before the first :meth:`write`, then exactly one of :meth:`succeed`,
    :meth:`fail`."""

    def __init__(self, options: OutputOptions, url_path: str) -> None:
        if options.directory is None:
            raise ValueError("Download needs an output directory")
        self.options = options
        self.final = options.directory / remote_name(url_path)
        self.part = self.final.with_name(self.final.name + PART)
        self._sink: IO[bytes] | None = None
        self._error_path: Path | None = None
        self._moved_final = False
        self.offset = 0  # bytes already here that a resume asks the server to skip
        self._resume_from: Path | None = None
        self._discard = False  # a pipe gets 2xx bodies only
        self.streaming = _is_special(self.final)
        if self.streaming:
            self._sink = open(self.final, "wb")  # noqa: SIM115 (closed in _close)
        elif options.resume:
            for candidate in (self.part, self.final):
                with contextlib.suppress(OSError):
                    if candidate.is_file():
                        self.offset, self._resume_from = candidate.stat().st_size, candidate
                        break

    def range_header(self) -> tuple[tuple[str, str], ...]:
        """The request's Range field when resuming (empty otherwise)."""
        return (("range", f"bytes={self.offset}-"),) if self.offset > 0 else ()

    def begin(self, status: int, headers: HeaderPairs = ()) -> str | None:
        """Open where this response's body goes; returns an error message when the
        response cannot continue our file (a 206 for another range)."""
        if self.streaming:
            self._discard = not 200 <= status < 300 and not self.options.keep_error_body
            return None
        if 200 <= status < 300:
            if status == 206 and self.offset > 0:
                start = _range_start(header_value(headers, "content-range"))
                if start != self.offset:
                    return (f"server sent a range starting at {start}, not at the "
                            f"{self.offset} bytes we have")
                if self._resume_from == self.final:
                    os.replace(self.final, self.part)  # grow it as NAME.part from now on
                    self._moved_final = True
                self._sink = open(self.part, "ab")  # noqa: SIM115 (closed in _close)
            else:
                self.offset = 0  # a whole body (200): start the file over
                self._sink = open(self.part, "wb")  # noqa: SIM115 (closed in _close)
        elif self.options.keep_error_body:
            self._error_path = self.final.with_name(f".{self.final.name}.error{PART}")
            self._sink = open(self._error_path, "wb")  # noqa: SIM115 (closed in _close)
        return None

    def already_complete(self, headers: HeaderPairs) -> bool:
        """A resume answered 416 whose ``bytes */SIZE`` is exactly what we hold: done.
        Moves a complete ``NAME.part`` to ``NAME``."""
        match = _UNSATISFIED.fullmatch(header_value(headers, "content-range") or b"")
        if self.offset == 0 or match is None or int(match.group(1)) != self.offset:
            return False
        if self._resume_from == self.part:
            os.replace(self.part, self.final)
        return True

    def write(self, data: bytes) -> None:
        if self._sink is not None and not self._discard:
            self._sink.write(data)

    def succeed(self) -> None:
        """A whole 2xx body: ``NAME.part`` becomes ``NAME``."""
        if self.streaming:
            self._close()
        elif self._close():
            os.replace(self.part, self.final)
        elif self._error_path is not None:  # a 416 "already complete" we kept the body of
            self._error_path.unlink(missing_ok=True)

    def fail(self, *, http_error: bool) -> str | None:
        """The download failed; returns a note on what was kept, if anything."""
        wrote_part = self._close()
        if self.streaming:
            return None
        if self._error_path is not None:
            if not http_error:
                self._error_path.unlink(missing_ok=True)
                return None
            target = self.final if not self.final.exists() else self.final.with_name(
                self.final.name + ".error")
            os.replace(self._error_path, target)
            return f"error body kept in {target}"
        if not wrote_part:
            return None
        try:
            size = self.part.stat().st_size
        except OSError:
            return None
        if size == 0 and not self._moved_final:
            self.part.unlink(missing_ok=True)
            return None
        return f"{size} bytes kept in {self.part} (resume with -C -)"

    def _close(self) -> bool:
        """Close the sink; whether it was the ``.part`` file."""
        sink, self._sink = self._sink, None
        if sink is None:
            return False
        sink.close()
        return self._error_path is None


def _is_special(path: Path) -> bool:
    """An existing FIFO, character or block device, or socket: no file to rename."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _range_start(value: bytes | None) -> int | None:
    match = _CONTENT_RANGE.fullmatch(value or b"")
    return int(match.group(1)) if match is not None else None

"""What ``tquic server`` serves: a URL path looked up under the root, and a file's
HTTP metadata (RFC 9110) -- Content-Type, Last-Modified, ETag, conditional requests
(§13) and byte ranges (§14).

Both protocols use it: HTTP/3 (``h3_files``) turns a :class:`Lookup` into a status
line, HTTP/0.9 (``hq``) into the file's bytes or a RESET_STREAM.  Nothing outside the
root is ever opened: ``..`` segments that would climb above the root are refused
before the file system is asked anything, and a symlink is followed only when its
target lies inside the root.
"""

from __future__ import annotations

import email.utils
import html
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

# The longest request target we take (RFC 9110 §15.5.15: 414 URI Too Long beyond).
MAX_PATH = 8192
INDEX = "index.html"
# A listing names at most this many entries (a bounded answer for a huge directory).
MAX_LISTING = 10_000
OCTETS = b"application/octet-stream"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a request target names: a file, a listing, a redirect or an error status."""

    status: int  # 200, 301, 400, 404 or 414
    file: Path | None = None  # 200: the file to send
    listing: bytes | None = None  # 200 with --list-dirs: an HTML directory listing
    location: str | None = None  # 301: the directory with its trailing slash
    reason: str = ""  # why not 200, for the error body


def lookup(root: Path | None, target: str, *, list_dirs: bool = False,
           redirect_dirs: bool = True) -> Lookup:
    """Resolve ``target`` (a request's path, maybe with ``?query``) under ``root``.

    A directory is answered by its ``index.html``, else by a listing with
    ``list_dirs``, else 404.  With ``redirect_dirs`` (HTTP/3), a directory asked
    for without its trailing slash is redirected there (301) so that relative
    links in its page resolve inside it, as every static web server does.
    """
    if len(target) > MAX_PATH:
        return Lookup(414, reason=f"request target longer than {MAX_PATH} bytes")
    path, _, query = target.partition("?")
    try:
        decoded = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return Lookup(400, reason="path is not UTF-8 after percent-decoding")
    if "\x00" in decoded:
        return Lookup(400, reason="NUL in path")
    if root is None:
        return Lookup(404, reason="no --root to serve files from")
    parts: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:  # RFC 3986 §5.2.4 would clamp; we refuse to climb above the root
                return Lookup(404, reason="path outside the served root")
            parts.pop()
        else:
            parts.append(segment)
    base = root.resolve()
    try:
        real = base.joinpath(*parts).resolve(strict=True)
        mode = real.stat().st_mode
    except (OSError, RuntimeError, ValueError):
        return Lookup(404, reason="no such file")
    if real != base and base not in real.parents:
        return Lookup(404, reason="path outside the served root")  # a symlink out
    if stat.S_ISREG(mode):
        return Lookup(200, file=real)
    if not stat.S_ISDIR(mode):
        return Lookup(404, reason="not a regular file")
    index = real / INDEX
    has_index = index.is_file() and base in index.resolve().parents
    if not has_index and not list_dirs:
        return Lookup(404, reason="directory without index.html (--list-dirs lists it)")
    if redirect_dirs and not path.endswith("/"):
        # Built from the resolved segments, never from the raw target: "//host/x" must
        # not become a Location that leaves this server (an open redirect).
        location = "/" + "".join(quote(part) + "/" for part in parts)
        return Lookup(301, location=location + (f"?{query}" if query else ""))
    if has_index:
        return Lookup(200, file=index.resolve())
    return Lookup(200, listing=listing_page(real, "/" + "/".join(parts)))


def listing_page(directory: Path, url_path: str) -> bytes:
    """A small HTML page linking each entry of ``directory`` (``--list-dirs``)."""
    title = html.escape(url_path.rstrip("/") + "/")
    rows = [] if url_path in ("", "/") else ['<li><a href="../">../</a></li>']
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)[:MAX_LISTING]
    except OSError:
        entries = []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
            size = "" if is_dir else f" {entry.stat().st_size} bytes"
        except OSError:
            continue
        name = entry.name + ("/" if is_dir else "")
        rows.append(f'<li><a href="{quote(name)}">{html.escape(name)}</a>{size}</li>')
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of {title}'
            f"</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n" + "\n".join(rows)
            + "\n</ul></body></html>\n")
    return page.encode("utf-8")


@dataclass(frozen=True, slots=True)
class FileMeta:
    """A file's representation metadata (RFC 9110 §8.3, §8.8)."""

    size: int
    mtime: int  # whole seconds: HTTP dates have no finer resolution
    etag: bytes
    last_modified: bytes
    content_type: bytes


def file_meta(path: Path) -> FileMeta:
    """Size, dates, a strong ETag (mtime in ns and size) and type; OSError if the file
    vanished."""
    info = path.stat()
    etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'.encode()
    return FileMeta(info.st_size, int(info.st_mtime), etag,
                    email.utils.formatdate(info.st_mtime, usegmt=True).encode(),
                    content_type(path.name))


def content_type(name: str) -> bytes:
    """From the extension (``mimetypes``); text types say UTF-8, unknown ones are octets."""
    kind, encoding = mimetypes.guess_type(name, strict=False)
    if kind is None or encoding is not None:  # .gz and the like: the bytes as stored
        return OCTETS
    if kind.startswith("text/"):
        kind += "; charset=utf-8"
    return kind.encode()


def _etags(value: bytes) -> list[bytes]:
    return [tag.strip() for tag in value.split(b",") if tag.strip()]


def _weak_equal(a: bytes, b: bytes) -> bool:
    return a.removeprefix(b"W/") == b.removeprefix(b"W/")  # RFC 9110 §8.8.3.2


def _http_date(value: bytes) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def not_modified(meta: FileMeta, if_none_match: bytes | None,
                 if_modified_since: bytes | None) -> bool:
    """RFC 9110 §13.2.2 steps 3-4 for GET/HEAD: whether to answer 304."""
    if if_none_match is not None:  # §13.1.2: weak comparison; "*" matches any file
        tags = _etags(if_none_match)
        return b"*" in tags or any(_weak_equal(tag, meta.etag) for tag in tags)
    if if_modified_since is not None:  # §13.1.3: ignored with If-None-Match or a bad date
        since = _http_date(if_modified_since)
        return since is not None and meta.mtime <= since
    return False


class RangeNotSatisfiable(ValueError):
    """A byte range that starts beyond the representation (RFC 9110 §15.5.17: 416)."""


def byte_range(value: bytes | None, size: int, meta: FileMeta | None = None,
               if_range: bytes | None = None) -> tuple[int, int] | None:
    """The (first, last) byte of one ``Range: bytes=...`` (RFC 9110 §14.1.2), or None to
    send the whole representation: no or unparsable Range, several ranges (we answer
    those 200 in full, as §14.2 allows), or an If-Range that no longer matches (§13.1.5).
    Raises :class:`RangeNotSatisfiable` when the range starts past the end."""
    if value is None:
        return None
    if if_range is not None and meta is not None:
        if if_range[:1] in (b'"', b"W"):
            if if_range.startswith(b"W/") or if_range != meta.etag:  # strong comparison
                return None
        elif if_range != meta.last_modified:
            return None
    unit, _, spec = value.partition(b"=")
    if unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition(b"-")
    if not dash or not (first_text or last_text):
        return None
    if not all(part.isdigit() for part in (first_text, last_text) if part):
        return None
    if not first_text:  # bytes=-N: the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"bytes=-{suffix} of {size}")
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: §14.1.1 lets us ignore it
    if first >= size:
        raise RangeNotSatisfiable(f"bytes={first}- of {size}")
    return first, min(int(last_text), size - 1) if last_text else size - 1

"""Fetching URLs over HTTP/3 for ``tquic client`` (ALPN "h3", the default).

One connection per server, one request stream per URL, all concurrent; each
body is hashed (sha256) and optionally written to a file as it arrives, so
size is bounded by the disk, not memory.  ``-v`` prints each response's status
line and header fields on stderr.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tquic.cli.fetch import ExitCode, connect_failed, fetching, output_options
from tquic.cli.output import Download, OutputOptions
from tquic.h3.aio import connect_h3
from tquic.h3.api import H3Client, H3RequestError
from tquic.h3.messages import HeaderPairs, Response
from tquic.io.protocol import QuicConnectionProtocol

if TYPE_CHECKING:
    from tquic.cli.fetch import Fetch
    from tquic.cli.multipath import MultipathSession


async def fetch_group_h3(config: Any, host: str, port: int, fetches: list[Fetch],
                         out_dir: Path | OutputOptions | None, *, timeout: float,
                         verbose: bool = False, qlog_dir: str | None = None,
                         qlog_format: str = "seq", session: MultipathSession | None = None,
                         on_finished: Callable[[QuicConnectionProtocol], Awaitable[None]]
                         | None = None) -> None:
    """Fetch every URL of ``fetches`` (same host and port) on one HTTP/3 connection.

    ``out_dir``: a directory to save the bodies in, or the full output options
    (``--keep-error-body``, ``-C -``).  With ``session`` (``--path``), the connection
    runs on its sockets and opens its extra paths while the requests go out.
    ``on_finished`` runs after the transfers, before the connection closes (e.g. to
    keep its session ticket).
    """
    output = output_options(out_dir)
    try:
        if session is not None:
            client = await session.connect_h3(host, port, config)
        else:
            client = await connect_h3(host, port, config, timeout=timeout,
                                      qlog_dir=qlog_dir, qlog_format=qlog_format)
    except (TimeoutError, ConnectionError, OSError) as exc:
        connect_failed(fetches, host, port, exc, timeout, "an HTTP/3 server")
        return
    async with client:
        opening = session.open_alongside(client.protocol) if session is not None else None
        await asyncio.gather(*(_fetch_one(client, f, output, timeout, verbose)
                               for f in fetches))
        if session is not None and opening is not None:
            await session.done_opening(opening)
            session.finished(client.protocol)
        if on_finished is not None:
            await on_finished(client.protocol)


async def _fetch_one(client: H3Client, fetch: Fetch, output: OutputOptions, timeout: float,
                     verbose: bool) -> None:
    digest = hashlib.sha256()
    progress = asyncio.Event()
    url = fetch.url if "://" in fetch.url else f"https://{fetch.url}"
    with fetching(fetch, output, timeout) as download:

        def on_response(status: int, headers: HeaderPairs) -> None:
            # Called from the HTTP/3 event dispatch: record, never raise.
            fetch.status = status
            if download is None:
                return
            try:
                problem = download.begin(status, headers)
            except OSError as exc:
                fetch.fail(ExitCode.WRITE, f"cannot write output: {exc.strerror or exc}")
                request.cancel()
                return
            if problem is not None:
                fetch.fail(ExitCode.BROKE_OFF, problem)
                request.cancel()

        def on_data(data: bytes) -> None:
            fetch.bytes += len(data)
            digest.update(data)
            if download is not None and fetch.error is None:
                try:
                    download.write(data)
                except OSError as exc:
                    fetch.fail(ExitCode.WRITE, f"cannot write output: {exc.strerror or exc}")
                    request.cancel()
            progress.set()

        headers = download.range_header() if download is not None else ()
        request = asyncio.ensure_future(client.request("GET", url, headers, on_data=on_data,
                                                       on_response=on_response))
        try:
            try:
                while not request.done():
                    # The timeout bounds silence, not the whole transfer.
                    waiter = asyncio.ensure_future(progress.wait())
                    done, _ = await asyncio.wait({request, waiter}, timeout=timeout,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if not done:
                        raise TimeoutError
                    progress.clear()
                if request.cancelled():
                    return  # on_response / on_data recorded why
                response = request.result()
            finally:
                if not request.done():
                    request.cancel()
            if verbose:
                lines = [f"{fetch.url}: HTTP/3 {response.status}"]
                lines += [f"  {n.decode('latin-1')}: {v.decode('latin-1')}"
                          for n, v in response.headers]
                print("\n".join(lines), file=sys.stderr, flush=True)
            _judge(fetch, response, download)
            fetch.sha256 = digest.hexdigest()
        except H3RequestError as exc:
            if exc.timed_out:  # the server fell silent: curl's "operation timeout"
                fetch.fail(ExitCode.TIMEOUT, f"no data for {timeout:g} s ({exc})")
            else:
                fetch.fail(ExitCode.BROKE_OFF, f"transfer broke off: {exc}")


def _judge(fetch: Fetch, response: Response, download: Download | None) -> None:
    """Whether a complete response is a success (2xx, or a resume already complete)."""
    status = response.status
    if 200 <= status < 300:
        return
    if status == 416 and download is not None and download.already_complete(response.headers):
        fetch.saved = str(download.final)
        return
    reason = "not found (HTTP status 404)" if status == 404 else f"HTTP status {status}"
    fetch.fail(ExitCode.HTTP_ERROR, reason)

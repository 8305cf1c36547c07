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

from tquic.cli.common import describe_close, fail_all, fetching
from tquic.h3.aio import connect_h3
from tquic.h3.api import H3Client, H3RequestError
from tquic.io.protocol import ConnectionClosedError, QuicConnectionProtocol

if TYPE_CHECKING:
    from tquic.cli.client import Fetch
    from tquic.cli.multipath import MultipathSession


async def fetch_group_h3(config: Any, host: str, port: int, fetches: list[Fetch],
                         out_dir: Path | None, *, timeout: float, verbose: bool = False,
                         qlog_dir: str | None = None, qlog_format: str = "seq",
                         session: MultipathSession | None = None,
                         on_finished: Callable[[QuicConnectionProtocol], Awaitable[None]]
                         | None = None) -> None:
    """Fetch every URL of ``fetches`` (same host and port) on one HTTP/3 connection.

    With ``session`` (``--path``), the connection runs on its sockets and opens
    its extra paths before the requests.  ``on_finished`` runs after the transfers,
    before the connection closes (e.g. to keep its session ticket).
    """
    try:
        if session is not None:
            client = await session.connect_h3(host, port, config)
        else:
            client = await connect_h3(host, port, config, timeout=timeout,
                                      qlog_dir=qlog_dir, qlog_format=qlog_format)
    except TimeoutError:
        fail_all(fetches, f"cannot connect to {host}:{port}: no answer within "
                           f"{timeout:g} s (is an HTTP/3 server listening there?)")
        return
    except ConnectionClosedError as exc:
        fail_all(fetches, f"cannot connect to {host}:{port}: {describe_close(exc)}")
        return
    except (ConnectionError, OSError) as exc:
        fail_all(fetches, f"cannot connect to {host}:{port}: "
                           f"{getattr(exc, 'strerror', None) or exc}")
        return
    async with client:
        if session is not None:
            await session.opened(client.protocol)
        await asyncio.gather(*(_fetch_one(client, f, out_dir, timeout, verbose)
                               for f in fetches))
        if session is not None:
            session.finished(client.protocol)
        if on_finished is not None:
            await on_finished(client.protocol)


async def _fetch_one(client: H3Client, fetch: Fetch, out_dir: Path | None, timeout: float,
                     verbose: bool) -> None:
    digest = hashlib.sha256()
    progress = asyncio.Event()

    def on_data(data: bytes) -> None:
        fetch.bytes += len(data)
        digest.update(data)
        if sink is not None:
            sink.write(data)
        progress.set()

    url = fetch.url if "://" in fetch.url else f"https://{fetch.url}"
    with fetching(fetch, out_dir, timeout) as sink:
        try:
            request = asyncio.ensure_future(client.request("GET", url, on_data=on_data))
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
                response = request.result()
            finally:
                if not request.done():
                    request.cancel()
            if verbose:
                lines = [f"{fetch.url}: HTTP/3 {response.status}"]
                lines += [f"  {n.decode('latin-1')}: {v.decode('latin-1')}"
                          for n, v in response.headers]
                print("\n".join(lines), file=sys.stderr, flush=True)
            if response.status == 404:
                fetch.error = "not found (HTTP status 404)"
            elif not 200 <= response.status < 300:
                fetch.error = f"HTTP status {response.status}"
            fetch.sha256 = digest.hexdigest()
        except H3RequestError as exc:
            fetch.error = str(exc)

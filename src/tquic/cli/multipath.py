"""``tquic client --path``: one connection over several local addresses (multipath).

The first ``--path`` is the local address of the handshake (path 0); each
further one becomes an extra path opened once the handshake is confirmed
(draft-ietf-quic-multipath §"Path Initiation and Validation").  Sockets are
bound per connection (one connection per server), so a bad address fails
before any packet is sent, in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

from tquic.cli.common import CliError
from tquic.io.multipath_client import (
    LocalPath,
    PathBindError,
    bind_path_sockets,
    connect_multipath,
    open_extra_paths,
)
from tquic.io.path_keeper import PathKeeper, ReopenPolicy
from tquic.io.protocol import QuicConnectionProtocol
from tquic.io.udp import UdpSocket

MAX_PATH_ID = 8  # initial_max_path_id offered with --path (room for re-opened paths)


def scheduler_error(name: str) -> str | None:
    """None when ``name`` is a registered scheduler, else the one-line error text."""
    from tquic.paths.schedulers import available_schedulers

    choices = available_schedulers()
    if name.lower() in choices:
        return None
    return f"unknown scheduler {name!r}; choose one of: {', '.join(choices)}"


@dataclasses.dataclass(slots=True)
class MultipathSession:
    """The local paths of one connection, and its per-path figures at the end."""

    server: str
    paths: Sequence[LocalPath]
    timeout: float
    qlog_dir: str | None = None
    qlog_format: str = "seq"
    reopen: ReopenPolicy = dataclasses.field(default_factory=ReopenPolicy)
    sockets: list[UdpSocket] = dataclasses.field(default_factory=list)
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    note: str | None = None
    keeper: PathKeeper | None = None

    def bind(self) -> None:
        try:
            self.sockets = bind_path_sockets(self.paths)
        except PathBindError as exc:
            raise CliError(str(exc.strerror)) from None

    async def connect(self, host: str, port: int, config: Any, *,
                      wait_connected: bool = True) -> QuicConnectionProtocol:
        if not self.sockets:
            self.bind()
        from tquic.qlog import QlogDirectory

        qlog = (QlogDirectory(self.qlog_dir, fmt=self.qlog_format)  # type: ignore[arg-type]
                if self.qlog_dir else None)
        try:
            return await connect_multipath(host, port, config, self.sockets,
                                           wait_connected=wait_connected,
                                           timeout=self.timeout, qlog=qlog)
        except PathBindError as exc:
            raise CliError(str(exc.strerror)) from None

    async def connect_h3(self, host: str, port: int, config: Any) -> Any:
        """Like ``tquic.h3.aio.connect_h3``, on the multipath endpoint."""
        from tquic.h3.aio import H3Bridge, _h3_quic_config
        from tquic.h3.api import H3Client
        from tquic.h3.settings import H3Config

        h3_config = H3Config()
        quic_config = _h3_quic_config(config, h3_config, is_client=True)
        proto = await self.connect(host, port, quic_config, wait_connected=False)
        bridge = H3Bridge(proto, lambda quic, transmit: H3Client(quic, transmit, h3_config))
        try:
            return await asyncio.wait_for(bridge.ready, self.timeout)
        except BaseException:
            await proto.__aexit__(None, None, None)
            raise

    def open_alongside(self, proto: QuicConnectionProtocol) -> asyncio.Task[None]:
        """Open the extra paths while the requests already go out on path 0: waiting for
        them first (the handshake's confirmation, then PATH_CHALLENGE) cost every
        download a round trip before its first byte."""
        return asyncio.ensure_future(self.opened(proto))

    async def done_opening(self, task: asyncio.Task[None]) -> None:
        """After the transfers: an opening still in progress is of no use any more."""
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def opened(self, proto: QuicConnectionProtocol) -> None:
        """Open the extra paths (every socket after the first), then keep them: a path
        the engine loses is re-opened from the same local path when its link is back."""
        path_ids, self.note = await open_extra_paths(proto, self.sockets[1:],
                                                     timeout=self.timeout)
        if len(self.paths) > 1 and not proto.is_closed:
            ids: list[int | None] = [0, *path_ids]
            self.keeper = PathKeeper(proto, list(zip(self.paths, self.sockets, strict=True)),
                                     ids, policy=self.reopen)

    @property
    def paths_open(self) -> tuple[int, int]:
        """(local paths with a validated path now, local paths asked for); before the
        extra paths are opened, none is counted."""
        keeper = self.keeper
        if keeper is None:
            return (1 if len(self.paths) == 1 else 0), len(self.paths)
        return keeper.paths_open, keeper.paths_wanted

    def finished(self, proto: QuicConnectionProtocol) -> None:
        """Record the per-path figures (before the connection closes): one row per path ID
        the connection used, also those lost on the way (with the local path they served)."""
        keeper = self.keeper
        if keeper is not None:
            keeper.close()
            self.rows.extend({"server": self.server, **row} for row in keeper.rows())
            return
        loop = asyncio.get_running_loop()
        for stats in proto.quic.path_stats(loop.time()):
            local = stats.network_path.local
            self.rows.append({
                "server": self.server, "path_id": stats.path_id,
                "path": str(self.paths[0]) if stats.path_id == 0 else None,
                "interface": self.paths[0].device if stats.path_id == 0 else None,
                "local": f"{local[0]}:{local[1]}", "state": stats.state, "reopened": False,
                "bytes_sent": stats.bytes_sent, "bytes_received": stats.bytes_received,
                "srtt_ms": round(stats.srtt * 1000, 3), "packets_lost": stats.packets_lost,
            })


def print_path_table(sessions: Sequence[MultipathSession]) -> None:
    rows = [row for s in sessions for row in s.rows]
    if not rows:
        return
    total = sum(r["bytes_received"] for r in rows) or 1
    print()
    print(f"{'path':>4}  {'local':<22}  {'state':<10}  {'sent':>12}  {'received':>12}  "
          f"{'share':>6}  {'srtt ms':>8}  {'lost':>6}  note")
    for r in rows:
        note = []
        if r.get("interface"):
            note.append(f"%{r['interface']}")
        if r.get("reopened"):
            note.append(f"re-opened at {r['opened_at']:.1f} s")
        if r.get("closed_at") is not None:
            note.append(f"lost at {r['closed_at']:.1f} s")
        print(f"{r['path_id']:>4}  {r['local']:<22}  {r['state']:<10}  {r['bytes_sent']:>12}  "
              f"{r['bytes_received']:>12}  {r['bytes_received'] / total:6.1%}  "
              f"{r['srtt_ms']:8.1f}  {r['packets_lost']:>6}  {', '.join(note)}")
    for s in sessions:
        if s.note:
            print(f"note: {s.server}: {s.note}")

"""What the simulator drives: a sans-I/O endpoint and an application workload.

``Endpoint`` is the sans-I/O contract of DESIGN.md, structurally: the QUIC
engine (``tquic.core.connection.QuicConnection``) satisfies it, and so do the
small test endpoints of ``tquic.sim.dummy``.  ``Workload`` is the application
on both ends of one flow: it reacts to the endpoints' events and tells the flow
what it delivered and when it is done.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Protocol

from tquic.paths.network_path import NetworkPath

if TYPE_CHECKING:
    from tquic.sim.runner import Flow


class Side(Enum):
    CLIENT = "client"
    SERVER = "server"


class Endpoint(Protocol):
    """The sans-I/O entry points the simulator calls (every one takes ``now``)."""

    def receive_datagram(self, data: bytes, network_path: NetworkPath, now: float,
                         ecn: int = 0) -> None: ...

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]: ...

    def next_timeout(self) -> float | None: ...

    def handle_timeout(self, now: float) -> None: ...

    def next_event(self) -> object | None: ...


class Workload(Protocol):
    """The application of one flow.

    ``start`` runs at the flow's start time (the client typically connects
    there); ``on_event`` gets every event either endpoint emits, in order.  The
    workload reports through the flow: ``flow.record_delivery(n)`` for
    application bytes that reached the sink in order, ``flow.record_handshake``,
    ``flow.finish()`` when its goal is met, ``flow.fail(reason)`` when it can
    no longer be.  ``direction`` is "down" (server→client data) or "up": the
    direction whose link rate the goodput ratio is measured against.
    """

    direction: str

    def start(self, flow: Flow) -> None: ...

    def on_event(self, side: Side, event: object) -> None: ...

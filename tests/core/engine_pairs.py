"""The engine tests' ways to build a tquic.testing.engines.EnginePair.

``make_pair``/``handshake_pair``: one link between CLIENT_ADDR and SERVER_ADDR (fake
TLS by default for ``handshake_pair``); ``mp_pair``/``two_paths``: multipath
negotiated, links LINK_A and LINK_B to MP_SERVER_ADDR, real TLS by default;
``routed_pair``: a server that receives only on the addresses it listens on
(preferred address, client migration).  ``inject`` forges a 1-RTT packet on a path;
``transfer`` checks that a stream crosses; ``terminated`` finds the end of a
connection in its events.
"""

from __future__ import annotations

from typing import Any

from engine_certs import server_config as default_server_config
from engine_fake_tls import fake_tls_factory

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import ConnectionTerminated, Event
from tquic.paths.network_path import NetworkPath
from tquic.testing.engines import CLIENT_ADDR, SERVER_ADDR, EnginePair, Link

CLIENT_PATH = NetworkPath(CLIENT_ADDR, SERVER_ADDR)
SERVER_PATH = NetworkPath(SERVER_ADDR, CLIENT_ADDR)
MP_SERVER_ADDR = ("192.0.2.1", 443)
LINK_A = ("10.0.0.1", 5000)
LINK_B = ("10.0.1.1", 5000)
PREFERRED = ("10.0.0.3", 8443)


def _client(**kwargs: Any) -> QuicConfiguration:
    return QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                             **kwargs)


def make_pair(client_config: QuicConfiguration | None = None,
              server_config: QuicConfiguration | None = None,
              tls_factory: Any = None, **link: Any) -> EnginePair:
    """A pair whose client has just started its handshake; ``link``: the fields of
    the one Link (delay, rate, drop, ecn)."""
    client = QuicConnection(client_config or _client(), tls_factory=tls_factory)
    server = QuicConnection(server_config or default_server_config(), is_client=False,
                            tls_factory=tls_factory)
    pair = EnginePair(client, server, links={CLIENT_ADDR: Link(**link)})
    pair.connect()
    return pair


def handshake_pair(**kwargs: Any) -> EnginePair:
    """``make_pair`` (fake TLS unless ``tls_factory`` is given) past the handshake."""
    kwargs.setdefault("tls_factory", fake_tls_factory)
    pair = make_pair(**kwargs)
    pair.run_until(lambda: pair.client.handshake_complete and pair.server.handshake_complete
                   and pair.client.handshake_confirmed, timeout=5, what="the handshake")
    return pair


def mp_pair(*, client_max_path_id: int | None = 4, server_max_path_id: int | None = 4,
            links: dict[tuple[str, int], Link] | None = None, fake_tls: bool = False,
            client_kwargs: dict[str, Any] | None = None,
            server_kwargs: dict[str, Any] | None = None) -> EnginePair:
    """A pair past the handshake (confirmed) over LINK_A, multipath offered with these
    initial_max_path_id (None: not offered)."""
    cc = _client(max_path_id=client_max_path_id, **(client_kwargs or {}))
    sc = default_server_config(max_path_id=server_max_path_id, **(server_kwargs or {}))
    return EnginePair.connected(cc, sc, tls_factory=fake_tls_factory if fake_tls else None,
                                links=links or {LINK_A: Link(), LINK_B: Link()},
                                client_addr=LINK_A, server_addr=MP_SERVER_ADDR)


def two_paths(scheduler: str = "minrtt", *, backup: bool = False, rate: float = 1_000_000,
              delays: tuple[float, float] = (0.01, 0.02), settle: float = 0.0,
              **client_kwargs: object) -> EnginePair:
    """``mp_pair`` with path 1 over LINK_B validated on both sides (path 0 over LINK_A),
    then ``settle`` seconds more for the RTT estimates to separate."""
    links = {LINK_A: Link(delay=delays[0], rate=rate), LINK_B: Link(delay=delays[1], rate=rate)}
    pair = mp_pair(links=links, client_kwargs={"scheduler": scheduler, **client_kwargs})
    client, server = pair.client, pair.server
    pair.run_until(lambda: client.can_open_path, timeout=2, what="a path ID to open")
    assert client.add_path(LINK_B, None, pair.now, backup=backup) == 1
    pair.run_until(lambda: (p := client.paths.get(1)) is not None and p.validated
                   and (q := server.paths.get(1)) is not None and q.validated,
                   timeout=2, what="path 1's validation on both sides")
    if settle:
        pair.advance(settle)
    return pair


def routed_pair(listening: tuple[tuple[str, int], ...] = (SERVER_ADDR, PREFERRED),
                client: QuicConfiguration | None = None, **server_kw: Any) -> EnginePair:
    """A pair past the handshake whose server receives on ``listening`` only."""
    return EnginePair.connected(client or _client(), default_server_config(**server_kw),
                                tls_factory=fake_tls_factory, server_addrs=listening)


def transfer(pair: EnginePair, size: int) -> bytes:
    """Send ``size`` bytes on a new client stream; they all arrive within 20 s."""
    data = bytes(range(256)) * (size // 256)
    sid = pair.client.open_stream()
    pair.client.send_stream_data(sid, data, end_stream=True)
    pair.run_until(lambda: pair.received(sid)[1], timeout=20, what=f"stream {sid}'s end")
    got, _ = pair.received(sid)
    assert got == data
    return got


def inject(pair: EnginePair, payload: bytes, *, to_server: bool = True,
           path_id: int = 0) -> None:
    """Send raw frames in a correctly protected 1-RTT packet on ``path_id``."""
    from tquic.wire.packet import encode_short_header

    sender = pair.client if to_server else pair.server
    receiver = pair.server if to_server else pair.client
    path = sender.paths.get(path_id)
    keys = sender._crypto.one_rtt
    if path is None or keys is None or path.peer_cid is None:
        raise AssertionError(f"no sending state for path {path_id}")
    pn = path.space.next_pn
    path.space.next_pn += 1
    header = encode_short_header(path.peer_cid.cid, pn, 4, bool(keys.send_phase))
    packet = keys.send.protect(header, payload, pn, path_id)
    local = path.network_path
    receiver.receive_datagram(packet, NetworkPath(local.remote, local.local), pair.now)


def terminated(events: list[Event]) -> ConnectionTerminated | None:
    """The ConnectionTerminated among ``events``, if any."""
    for event in events:
        if isinstance(event, ConnectionTerminated):
            return event
    return None

"""The engine tests' ways to build a tquic.testing.engines.EnginePair.

``make_pair``/``handshake_pair``: one link between CLIENT_ADDR and SERVER_ADDR (fake
TLS by default for ``handshake_pair``); ``mp_pair``/``two_paths``: multipath
negotiated, links LINK_A and LINK_B to MP_SERVER_ADDR, real TLS by default;
``routed_pair``: a server that receives only on the addresses it listens on
(preferred address, client migration).  ``inject`` forges a 1-RTT packet on a path;
``transfer`` checks that a stream crosses; ``terminated`` finds the end of a
connection in its events.

The clients built here log their TLS secrets (``keylog_file``, the SSLKEYLOGFILE
format, one file per client in a directory removed at exit): ``inject`` derives
the packet protection from them as a packet analyser would, so no test reads an
engine's keys.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from typing import Any

from engine_certs import server_config as default_server_config
from engine_fake_tls import fake_tls_factory

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection
from tquic.core.events import ConnectionTerminated, Event
from tquic.crypto.protection import PacketProtection
from tquic.paths.network_path import NetworkPath
from tquic.testing.engines import CLIENT_ADDR, SERVER_ADDR, EnginePair, Link

CLIENT_PATH = NetworkPath(CLIENT_ADDR, SERVER_ADDR)
SERVER_PATH = NetworkPath(SERVER_ADDR, CLIENT_ADDR)
MP_SERVER_ADDR = ("192.0.2.1", 443)
LINK_A = ("10.0.0.1", 5000)
LINK_B = ("10.0.1.1", 5000)
PREFERRED = ("10.0.0.3", 8443)


_KEYLOG_DIR = tempfile.mkdtemp(prefix=f"tquic-keylog-{os.getpid()}-")
atexit.register(shutil.rmtree, _KEYLOG_DIR, True)
_keylog_names = itertools.count()


def _client(**kwargs: Any) -> QuicConfiguration:
    kwargs.setdefault("keylog_file", os.path.join(_KEYLOG_DIR, f"{next(_keylog_names)}.log"))
    return QuicConfiguration(is_client=True, alpn_protocols=("hq",), verify_peer=False,
                             **kwargs)


client_config = _client  # a client configuration that logs its secrets (``inject``)


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
    if path is None or path.peer_cid is None:
        raise AssertionError(f"no sending state for path {path_id}")
    keys = one_rtt_send_keys(pair, sender)
    pn = path.space.next_pn
    path.space.next_pn += 1
    header = encode_short_header(path.peer_cid.cid, pn, 4, bool(sender.key_phase))
    packet = keys.protect(header, payload, pn, path_id)
    local = path.network_path
    receiver.receive_datagram(packet, NetworkPath(local.remote, local.local), pair.now)


def inject_handshake(pair: EnginePair, payload: bytes) -> None:
    """Send raw frames from the client in a correctly protected Handshake packet
    (keys from the client's key log), padded for the header protection sample."""
    from tquic.wire.packet import PacketType, encode_long_header

    client = pair.client
    suite = client.cipher_suite
    if suite is None:
        raise AssertionError("no cipher suite yet: the server's Initial has not arrived")
    keys = PacketProtection.from_secret(
        suite, _logged_secret(pair, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"), client.version)
    payload = payload.ljust(32, b"\x00")  # PADDING
    pn = 1000  # above anything the client sent: no duplicate (RFC 9000 §12.3)
    header = encode_long_header(client.version, PacketType.HANDSHAKE,
                                pair.server.local_cids()[0][0],
                                client.local_cids()[0][0], b"", len(payload) + 16, pn, 4)
    pair.server.receive_datagram(keys.protect(header, payload, pn),
                                 NetworkPath(pair.server_addr, pair.client_addr), pair.now)


def _logged_secret(pair: EnginePair, label: str) -> bytes:
    keylog = pair.client.configuration.keylog_file
    if keylog is None:
        raise AssertionError("the client logs no secrets (build it with engine_pairs.client_config)")
    with open(keylog, encoding="ascii") as f:
        secrets = [bytes.fromhex(fields[2]) for line in f
                   if (fields := line.split()) and fields[0] == label]
    if len(secrets) != 1:
        raise AssertionError(f"{len(secrets)} {label} lines in {keylog}")
    return secrets[0]


def one_rtt_send_keys(pair: EnginePair, sender: QuicConnection) -> PacketProtection:
    """The 1-RTT packet protection ``sender`` (one of ``pair``) sends with now: from the
    pair's client's key log (RFC 9001 §5.1: keys from the traffic secret), moved on by
    the sender's key updates (§6: one generation each)."""
    suite = sender.cipher_suite
    if suite is None:
        raise AssertionError("no cipher suite: the handshake has not started")
    label = "CLIENT_TRAFFIC_SECRET_0" if sender.is_client else "SERVER_TRAFFIC_SECRET_0"
    keys = PacketProtection.from_secret(suite, _logged_secret(pair, label), sender.version)
    for _ in range(sender.crypto_state.key_updates):
        keys = keys.next_generation()
    return keys


def terminated(events: list[Event]) -> ConnectionTerminated | None:
    """The ConnectionTerminated among ``events``, if any."""
    for event in events:
        if isinstance(event, ConnectionTerminated):
            return event
    return None

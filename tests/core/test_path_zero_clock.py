"""Path 0's age counts from the connection's start on any clock.

PathStats.goodput divides the bytes a path delivered by its age.  Path 0 was born
with ``opened_at`` 0.0: right in the simulator, whose clock starts at 0, and on a
real clock (monotonic time since boot) a goodput thousands of times too small.
"""

from __future__ import annotations

from engine_pairs import CLIENT_PATH, make_pair

from tquic.core.config import QuicConfiguration
from tquic.core.connection import QuicConnection


def test_client_path_zero_opens_at_connect_time() -> None:
    client = QuicConnection(QuicConfiguration(is_client=True, alpn_protocols=("hq",),
                                              verify_peer=False))
    client.connect(CLIENT_PATH, 5000.0)
    path = client.paths.get(0)
    assert path is not None and path.opened_at == 5000.0


def test_server_path_zero_opens_when_the_first_initial_arrives() -> None:
    loop = make_pair()
    loop.run_until(lambda: loop.server.paths.get(0) is not None, timeout=5)
    path = loop.server.paths.get(0)
    assert path is not None and path.opened_at > 0.0

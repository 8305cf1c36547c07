"""HTTP/3 within a peer's unidirectional stream limit (RFC 9114 §6.2: a peer need grant only 3).

ngtcp2's server grants exactly 3 unidirectional streams; our GREASE stream (§6.2.3) must then
be skipped instead of failing the connection.
"""

from __future__ import annotations

from h3_shim import ShimQuic

from tquic.core.send_stream import StreamUsageError
from tquic.h3.connection import H3Connection
from tquic.h3.settings import H3Config


class LimitedQuic(ShimQuic):
    """A shim whose peer allows only ``max_uni`` unidirectional streams, like the engine."""

    def __init__(self, is_client: bool, max_uni: int) -> None:
        super().__init__(is_client)
        self.max_uni = max_uni
        self.uni_opened = 0

    def open_stream(self, bidirectional: bool = True) -> int:
        if not bidirectional:
            if self.uni_opened >= self.max_uni:
                raise StreamUsageError("stream limit reached; wait for MAX_STREAMS")
            self.uni_opened += 1
        return super().open_stream(bidirectional)


def test_grease_stream_skipped_when_peer_grants_only_three_uni_streams() -> None:
    quic = LimitedQuic(is_client=True, max_uni=3)
    H3Connection(quic, is_client=True, config=H3Config(grease=True))
    # Control, QPACK encoder, QPACK decoder: exactly the three the peer allowed.
    assert quic.uni_opened == 3
    assert sorted(quic.sent) == [2, 6, 10]
    assert quic.fin == set()


def test_grease_stream_sent_when_peer_grants_a_fourth() -> None:
    quic = LimitedQuic(is_client=False, max_uni=4)
    H3Connection(quic, is_client=False, config=H3Config(grease=True))
    assert quic.uni_opened == 4
    grease_stream = 15  # the fourth server-initiated unidirectional stream
    assert grease_stream in quic.fin and quic.sent[grease_stream].endswith(b"GREASE")

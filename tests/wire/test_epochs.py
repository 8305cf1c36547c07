"""One enum per concept: encryption levels (RFC 9001 §4) and packet-number
spaces (RFC 9000 §12.3), and the one mapping between them."""

from __future__ import annotations

from tquic.core.conn_base import Epoch as CoreEpoch
from tquic.crypto.tls.config import Epoch as TlsEpoch
from tquic.paths.path import SpaceKind
from tquic.paths.sent_packets import SpaceId as RecoverySpaceId
from tquic.wire.epochs import Epoch, SpaceId, space_of


def test_zero_rtt_and_one_rtt_share_the_application_space() -> None:
    assert [space_of(e) for e in Epoch] == [
        SpaceId.INITIAL, SpaceId.APPLICATION, SpaceId.HANDSHAKE, SpaceId.APPLICATION]
    assert space_of(int(Epoch.HANDSHAKE)) is SpaceId.HANDSHAKE  # plain ints work too


def test_every_layer_uses_the_same_enums() -> None:
    assert CoreEpoch is Epoch and TlsEpoch is Epoch
    assert RecoverySpaceId is SpaceId and SpaceKind is SpaceId

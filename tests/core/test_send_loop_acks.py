"""The send loop under multipath (core/send_loop.py): a path's owed ACK rides the packet
the scheduler builds on that path in the same call, instead of leaving first in a
packet of its own (the path-specific ACKs go after the scheduled packets)."""

from __future__ import annotations

from typing import Any

import pytest
from engine_pairs import two_paths

from tquic.core.packet_builder import PacketBuilder
from tquic.core.packet_draft import PacketDraft
from tquic.core.records import AckRecord
from tquic.paths.network_path import NetworkPath
from tquic.paths.path import Path

pytestmark = pytest.mark.timeout(30)


def test_an_owed_ack_rides_the_data_packet_of_its_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = two_paths("minrtt")
    client, server = pair.client, pair.server
    pair.advance(0.2)  # nothing in flight, nothing owed
    down = server.open_stream()
    for _ in range(4):  # ack-eliciting packets to the client: an immediate ACK is owed
        server.send_stream_data(down, b"s" * 1000)
    now = pair.now
    for data, path in server.datagrams_to_send(now):
        client.receive_datagram(data, NetworkPath(path.remote, path.local), now)
    owed = [p.path_id for p in client.paths
            if p.space.ack_tracker.has_unacked and p.space.ack_tracker.ack_due(now)]
    assert owed, "the client owes an ACK"
    client.send_stream_data(client.open_stream(), b"c" * 100)
    built: list[tuple[int, bool, bool]] = []  # (path ID, carries an ACK, ack-eliciting)
    seal = PacketBuilder.seal

    def recording(self: PacketBuilder, drafts: list[PacketDraft], path: Path, now: float,
                  off_path: bool = False) -> Any:
        for d in drafts:
            built.append((d.path.path_id, any(isinstance(r, AckRecord) for r in d.records),
                          d.ack_eliciting))
        return seal(self, drafts, path, now, off_path)

    monkeypatch.setattr(PacketBuilder, "seal", recording)
    client.datagrams_to_send(now)
    data_paths = {pid for pid, _, eliciting in built if eliciting}
    assert len(data_paths) == 1, built  # the stream data went in one packet
    (data_path,) = data_paths
    # Its path's ACK went with it: no ACK-only packet on that path in the same call.
    assert not [b for b in built if b[0] == data_path and not b[2]], built
    if data_path in owed:
        assert any(pid == data_path and ack and eliciting for pid, ack, eliciting in built)
    # Every ACK owed was sent (on its own path) in that call.
    acked = {pid for pid, ack, _ in built if ack}
    assert set(owed) <= acked, (owed, built)

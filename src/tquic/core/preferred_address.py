"""Server's preferred address (RFC 9000 §9.6, §18.2).

Server: the preferred_address transport parameter carries the addresses of the
configuration and a connection ID with its stateless reset token, issued as
sequence number 1 (§5.1.1).  A server using zero-length connection IDs must not
send it (§18.2); ours never does.

Client: once the handshake is confirmed it probes the address of the family it
already uses -- PATH_CHALLENGE from the same local address, to the new server
address, with the connection ID of the parameter (§9.6.1) -- while the old path
keeps carrying the connection.  A matching PATH_RESPONSE moves path 0 there (a
new path for congestion control and RTT, §9.4) and retires the old connection
ID; no response within the validation time leaves everything on the original
address (§9.6.1: "MUST continue sending all future packets to the server's
original IP address").

Multipath (draft-ietf-quic-multipath §"Relation to Other Transport
Parameters"): using the preferred address from the same local address is a
migration of path 0; the parameter's connection ID belongs to path ID 0.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tquic.core.cids import LocalCid, PeerCid
from tquic.core.conn_base import Epoch
from tquic.core.events import ConnectionIdIssued, PathMigrated
from tquic.core.records import NOOP, Record
from tquic.paths.network_path import NetworkPath
from tquic.paths.sent_packets import SentPacket
from tquic.wire.epochs import SpaceId
from tquic.wire.packet import encode_packet_number, encode_short_header
from tquic.wire.params import PreferredAddress, TransportParameters

if TYPE_CHECKING:
    from tquic.core.connection import QuicConnection

MAX_PROBES = 3  # PATH_CHALLENGEs sent to the preferred address before giving up
PROBE_SIZE = 1200  # RFC 9000 §8.2.1
AEAD_TAG = 16
_ZERO_V4 = ipaddress.IPv4Address(0)
_ZERO_V6 = ipaddress.IPv6Address(0)


@dataclass(slots=True)
class PreferredAddressProbe:
    """Client: validation of the server's preferred address in progress."""

    network_path: NetworkPath
    peer_cid: PeerCid
    deadline: float  # give up at this time (§8.2.4)
    resend_at: float  # next PATH_CHALLENGE
    sent: int = 0
    challenges: set[bytes] = field(default_factory=set)


class PreferredAddressHandler:
    """preferred_address: issue it (server), validate and follow it (client).  Owns the
    parameter's connection ID (server) and the validation in progress (client)."""

    __slots__ = ("_c", "done", "local_cid", "probe")

    def __init__(self, conn: QuicConnection) -> None:
        self._c = conn
        self.local_cid: LocalCid | None = None  # server: the CID of the parameter
        self.probe: PreferredAddressProbe | None = None  # client: validation in progress
        self.done = False  # client: the preferred address was tried (once per connection)

    def parameter(self) -> PreferredAddress | None:
        """The preferred_address parameter to send, or None (client, not configured)."""
        c = self._c
        cfg = c._config
        if c._is_client or (cfg.preferred_address_v4 is None and cfg.preferred_address_v6 is None):
            return None
        if cfg.connection_id_length == 0:
            return None  # §18.2: not with a zero-length connection ID
        entry = self.local_cid
        if entry is None:
            # §5.1.1: "the sequence number of the connection ID supplied in the
            # preferred_address transport parameter is 1" -- issued right after the
            # handshake CID (0), once even if the parameters are built again.
            entry = c._cids.local[0].issue()
            self.local_cid = entry
            c._queue_event(ConnectionIdIssued(entry.cid, entry.sequence_number,
                                              entry.reset_token))
        v4, v6 = cfg.preferred_address_v4, cfg.preferred_address_v6
        return PreferredAddress(
            ipv4_address=ipaddress.IPv4Address(v4[0]) if v4 else _ZERO_V4,
            ipv4_port=v4[1] if v4 else 0,
            ipv6_address=ipaddress.IPv6Address(v6[0]) if v6 else _ZERO_V6,
            ipv6_port=v6[1] if v6 else 0,
            connection_id=entry.cid,
            stateless_reset_token=entry.reset_token,
        )

    def on_peer_params(self, params: TransportParameters) -> None:
        """Client: hold the parameter's CID as the server's CID of sequence 1 (§5.1.1),
        with its reset token (§10.3.1), whether or not the address is followed."""
        c = self._c
        address = params.preferred_address
        if not c._is_client or address is None:
            return
        c._cids.peer[0].add_preferred(address.connection_id, address.stateless_reset_token)

    def start(self, now: float) -> None:
        """Client, handshake confirmed: start validating the preferred address (§9.6.1)."""
        c = self._c
        params = c._peer_params
        if (not c._is_client or self.done or params is None
                or params.preferred_address is None or not c._config.follow_preferred_address
                or not c._paths):
            return
        self.done = True
        path = c._paths.get(0)
        if path is None or not path.usable:
            return
        current = path.network_path
        address = params.preferred_address
        # The family the client already speaks: the local socket can reach it.
        target = address.ipv6 if _is_ipv6(current.remote[0]) else address.ipv4
        if target is None or _same_address(target, current.remote):
            return
        peer_cid = c._cids.peer[0].get(1)
        if peer_cid is None or peer_cid.in_use or peer_cid.cid != address.connection_id:
            return  # already used or retired (e.g. by retire_prior_to)
        peer_cid.in_use = True
        limit = max(3 * c._timers.pto(), 6 * c._config.initial_rtt)
        self.probe = PreferredAddressProbe(NetworkPath(current.local, target), peer_cid,
                                               deadline=now + limit, resend_at=now)

    def send(self, now: float, out: list[tuple[bytes, NetworkPath]]) -> None:
        """A probe (PATH_CHALLENGE padded to 1200 bytes, §8.2.1) to the preferred address,
        in path 0's packet-number space with the parameter's CID."""
        c = self._c
        probe = self.probe
        path = c._paths.get(0)
        if probe is None or path is None or c._crypto.one_rtt is None or now < probe.resend_at:
            return
        if probe.sent >= MAX_PROBES:
            probe.resend_at = probe.deadline
            return
        data = os.urandom(8)
        probe.challenges.add(data)
        probe.sent += 1
        probe.resend_at = now + max(c._timers.pto(), 2 * c._config.initial_rtt)
        keys = c._crypto.one_rtt
        space = path.space
        dcid = probe.peer_cid.cid
        pn = space.next_pn
        space.next_pn = pn + 1
        _, pn_len = encode_packet_number(pn, space.largest_acked)
        header = encode_short_header(dcid, pn, pn_len, bool(keys.send_phase))
        # §8.2.1: expanded to 1200 bytes (PATH_CHALLENGE, then PADDING).
        padding = max(0, PROBE_SIZE - len(header) - 9 - AEAD_TAG)
        datagram = keys.send.protect(header, b"\x1a" + data + bytes(padding), pn, path.path_id)
        keys.on_packet_sent(pn, path.path_id)
        # Recorded (its ACK is legitimate) but not in flight: the loss of a probe to
        # another address must not shrink the window of the path in use (RFC 9000 §9.4,
        # RFC 9002 §6: only in-flight packets count for congestion control).
        records: list[Record] = [NOOP]
        path.recovery.on_packet_sent(SentPacket(pn, now, len(datagram), False, False,
                                                SpaceId.APPLICATION, list(records)), now)
        if c._qlog is not None:
            c._qlog.packet_sent(now, Epoch.ONE_RTT, pn, len(datagram), path.path_id,
                                   records, padding, keys.send_phase)
        out.append((datagram, probe.network_path))

    def on_response(self, data: bytes, now: float) -> bool:
        """PATH_RESPONSE: True if it answered a probe of the preferred address; then
        path 0 moves there (§9.6.1), with the parameter's CID."""
        c = self._c
        probe = self.probe
        if probe is None or data not in probe.challenges:
            return False
        self.probe = None
        path = c._paths.get(0)
        if path is None or not path.usable:
            return True
        old = path.peer_cid
        path.peer_cid = probe.peer_cid
        if old is not None and old is not probe.peer_cid:
            c._cids.peer[0].retire(old.sequence_number)
            c._multipath.flush_retirements()
        path.network_path = probe.network_path
        path.previous_network_path = None
        # §9.4: another server address is a new path: fresh RTT and congestion state.
        c._path_setup.reset_recovery(path)
        c._queue_event(PathMigrated(path.path_id, path.network_path))
        return True

    def deadline(self) -> float | None:
        probe = self.probe
        if probe is None:
            return None
        return min(probe.deadline, probe.resend_at)

    def on_timeout(self, now: float) -> None:
        probe = self.probe
        if probe is None or now < probe.deadline:
            return
        # §9.6.1: validation failed: stay on the original address.  The CID stays
        # available for a later migration.
        self.probe = None
        probe.peer_cid.in_use = False


def _is_ipv6(host: str) -> bool:
    return ":" in host and not host.startswith("::ffff:")


def _same_address(a: tuple[str, int], b: tuple[str, int]) -> bool:
    try:
        return ipaddress.ip_address(a[0]) == ipaddress.ip_address(b[0]) and a[1] == b[1]
    except ValueError:
        return a == b

"""Connection IDs: the ones we issue and the ones the peer issued us (RFC 9000 §5.1).

- ``LocalCids``: our CIDs with their sequence numbers and stateless reset
  tokens; NEW_CONNECTION_ID announcements up to the peer's
  active_connection_id_limit; RETIRE_CONNECTION_ID checks (§19.16).
- ``PeerCids``: CIDs the peer gave us (NEW_CONNECTION_ID, §19.15), the
  retire_prior_to mechanism (§5.1.2), our active_connection_id_limit
  (CONNECTION_ID_LIMIT_ERROR), and the reset tokens used to recognise a
  stateless reset (§10.3.1).

Stateless reset tokens are an HMAC of the CID under a static key (§10.3.2),
so an endpoint that lost all state can still compute them.  Every table is
bounded.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from tquic.crypto.keys import keyed_hmac
from tquic.wire.errors import QuicError, TransportErrorCode

RESET_TOKEN_SIZE = 16
FRAME_NEW_CONNECTION_ID = 0x18
FRAME_RETIRE_CONNECTION_ID = 0x19
# We never keep more CIDs of our own active than this, whatever the peer allows.
MAX_LOCAL_ACTIVE = 8
# RFC 9000 §5.1.2: bound the RETIRE_CONNECTION_ID frames we owe the peer.
MAX_PENDING_RETIREMENTS_FACTOR = 4


def stateless_reset_token(key: bytes, cid: bytes) -> bytes:
    """The reset token of ``cid`` (RFC 9000 §10.3.2: a keyed hash, stable across restarts)."""
    return keyed_hmac("sha256", key)(cid)[:RESET_TOKEN_SIZE]


@dataclass(slots=True)
class LocalCid:
    """A connection ID we issued."""

    sequence_number: int
    cid: bytes
    reset_token: bytes
    path_id: int = 0


class LocalCids:
    """Connection IDs we issued to the peer, for one path ID (path 0 without multipath)."""

    __slots__ = ("_by_cid", "_by_seq", "_generator", "_next_seq", "cid_length", "path_id",
                 "reset_key")

    def __init__(self, cid_length: int, reset_key: bytes, path_id: int = 0,
                 initial_cid: bytes | None = None,
                 generator: Callable[[], bytes] | None = None) -> None:
        self.cid_length = cid_length
        self.reset_key = reset_key
        self.path_id = path_id
        # A server behind a CID-routing load balancer (or with several workers) issues
        # CIDs that encode where to route (tquic.wire.quic_lb); others are random.
        self._generator = generator
        self._by_seq: dict[int, LocalCid] = {}
        self._by_cid: dict[bytes, LocalCid] = {}
        self._next_seq = 0
        self.issue(initial_cid)  # sequence 0: the SCID of our handshake packets (§5.1.1)

    def issue(self, cid: bytes | None = None) -> LocalCid:
        """A new CID with the next sequence number."""
        while cid is None or cid in self._by_cid:
            cid = os.urandom(self.cid_length) if self._generator is None else self._generator()
        entry = LocalCid(self._next_seq, cid, stateless_reset_token(self.reset_key, cid),
                         self.path_id)
        self._next_seq += 1
        self._by_seq[entry.sequence_number] = entry
        self._by_cid[cid] = entry
        return entry

    @property
    def next_sequence(self) -> int:
        return self._next_seq

    @property
    def initial(self) -> LocalCid | None:
        return self._by_seq.get(0)

    @property
    def active(self) -> list[LocalCid]:
        return list(self._by_seq.values())

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_cid

    def get(self, cid: bytes) -> LocalCid | None:
        return self._by_cid.get(cid)

    def replenish(self, peer_limit: int) -> list[LocalCid]:
        """New CIDs to announce so the peer holds min(its limit, our cap) of ours (§5.1.1)."""
        target = min(peer_limit, MAX_LOCAL_ACTIVE)
        issued: list[LocalCid] = []
        while len(self._by_seq) < target:
            issued.append(self.issue())
        return issued

    def on_retire(self, sequence_number: int, packet_dcid: bytes) -> LocalCid | None:
        """RETIRE_CONNECTION_ID from the peer; the retired CID, or None if already retired.

        RFC 9000 §19.16: a sequence number never sent, or the CID the frame's
        packet was sent to, is a PROTOCOL_VIOLATION.
        """
        if sequence_number >= self._next_seq:
            raise QuicError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                f"RETIRE_CONNECTION_ID for unissued sequence number {sequence_number}",
                frame_type=FRAME_RETIRE_CONNECTION_ID,
            )
        entry = self._by_seq.get(sequence_number)
        if entry is None:
            return None
        if entry.cid == packet_dcid:
            raise QuicError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                "RETIRE_CONNECTION_ID retires the CID of the packet carrying it",
                frame_type=FRAME_RETIRE_CONNECTION_ID,
            )
        del self._by_seq[sequence_number]
        del self._by_cid[entry.cid]
        return entry


@dataclass(slots=True)
class PeerCid:
    """A connection ID the peer issued us."""

    sequence_number: int
    cid: bytes
    reset_token: bytes | None
    in_use: bool = False


class PeerCids:
    """Connection IDs the peer gave us, bounded by our active_connection_id_limit."""

    __slots__ = ("_by_seq", "_retire_prior_to", "limit", "pending_retirements", "reset_tokens")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_seq: dict[int, PeerCid] = {}
        self._retire_prior_to = 0
        self.pending_retirements: list[int] = []  # RETIRE_CONNECTION_ID frames to send
        self.reset_tokens: dict[bytes, int] = {}  # token -> sequence number (§10.3.1)

    def set_initial(self, cid: bytes) -> PeerCid:
        """Sequence 0: the SCID of the peer's first packet (§5.1.1); replaces a previous one
        (the client's DCID changes with the server's first Initial or a Retry)."""
        old = self._by_seq.get(0)
        if old is not None and old.reset_token is not None:
            self.reset_tokens.pop(old.reset_token, None)
        entry = PeerCid(0, cid, None, in_use=True)
        self._by_seq[0] = entry
        return entry

    def set_reset_token(self, sequence_number: int, token: bytes) -> None:
        """The server's stateless_reset_token transport parameter is for sequence 0 (§18.2)."""
        entry = self._by_seq.get(sequence_number)
        if entry is not None:
            entry.reset_token = token
            self.reset_tokens[token] = sequence_number

    def add_preferred(self, cid: bytes, reset_token: bytes) -> None:
        """The CID of the server's preferred_address parameter: sequence number 1
        (RFC 9000 §5.1.1), with its stateless reset token."""
        if 1 in self._by_seq or any(entry.cid == cid for entry in self._by_seq.values()):
            return
        self._by_seq[1] = PeerCid(1, cid, reset_token)
        self.reset_tokens[reset_token] = 1

    def get(self, sequence_number: int) -> PeerCid | None:
        return self._by_seq.get(sequence_number)

    def cids(self) -> list[bytes]:
        """The connection IDs held, by sequence number."""
        return [self._by_seq[seq].cid for seq in sorted(self._by_seq)]

    @property
    def active_count(self) -> int:
        return len(self._by_seq)

    @property
    def unused_count(self) -> int:
        """CIDs held that no path uses yet."""
        return sum(1 for entry in self._by_seq.values() if not entry.in_use)

    @property
    def next_expected_sequence(self) -> int:
        return max(self._by_seq, default=-1) + 1

    def has_cid(self, cid: bytes) -> bool:
        return any(entry.cid == cid for entry in self._by_seq.values())

    def on_new_connection_id(
        self, sequence_number: int, retire_prior_to: int, cid: bytes, reset_token: bytes,
        current_cid_length: int,
    ) -> list[PeerCid]:
        """NEW_CONNECTION_ID (RFC 9000 §19.15, §5.1.2).  Returns in-use CIDs it retired;
        the caller must move their paths to other CIDs."""
        def violation(reason: str, code: int = TransportErrorCode.PROTOCOL_VIOLATION) -> QuicError:
            return QuicError(code, reason, frame_type=FRAME_NEW_CONNECTION_ID)

        if current_cid_length == 0:
            raise violation("NEW_CONNECTION_ID from a peer using zero-length connection IDs")
        existing = self._by_seq.get(sequence_number)
        if existing is not None:
            if existing.cid != cid or (
                existing.reset_token is not None and existing.reset_token != reset_token
            ):
                raise violation(f"sequence number {sequence_number} reused for another CID")
            return []
        for entry in self._by_seq.values():
            if entry.cid == cid:
                raise violation("connection ID repeated with a different sequence number")
        retired_in_use: list[PeerCid] = []
        if sequence_number < self._retire_prior_to:
            # §5.1.2: already retired by an earlier Retire Prior To: retire it at once.
            self._queue_retirement(sequence_number)
        else:
            self._by_seq[sequence_number] = PeerCid(sequence_number, cid, reset_token)
            self.reset_tokens[reset_token] = sequence_number
        if retire_prior_to > self._retire_prior_to:
            self._retire_prior_to = retire_prior_to
            for seq in sorted(s for s in self._by_seq if s < retire_prior_to):
                entry = self._by_seq[seq]
                if entry.in_use:
                    retired_in_use.append(entry)
                self._remove(seq)
        if len(self._by_seq) > self.limit:
            raise violation(
                f"peer exceeded active_connection_id_limit {self.limit}",
                TransportErrorCode.CONNECTION_ID_LIMIT_ERROR,
            )
        return retired_in_use

    def acquire(self) -> PeerCid | None:
        """An unused CID for a path (migration, new path), marked in use."""
        for seq in sorted(self._by_seq):
            entry = self._by_seq[seq]
            if not entry.in_use:
                entry.in_use = True
                return entry
        return None

    def retire(self, sequence_number: int) -> None:
        """Stop using a CID and tell the peer (RETIRE_CONNECTION_ID)."""
        if sequence_number in self._by_seq:
            self._remove(sequence_number)

    def _remove(self, seq: int) -> None:
        entry = self._by_seq.pop(seq)
        if entry.reset_token is not None:
            self.reset_tokens.pop(entry.reset_token, None)
        self._queue_retirement(seq)

    def _queue_retirement(self, seq: int) -> None:
        if seq not in self.pending_retirements:
            self.pending_retirements.append(seq)
        if len(self.pending_retirements) > MAX_PENDING_RETIREMENTS_FACTOR * self.limit:
            # §5.1.2: an endpoint SHOULD limit the retirements it tracks and MAY close.
            raise QuicError(
                TransportErrorCode.CONNECTION_ID_LIMIT_ERROR,
                "too many connection IDs waiting for retirement",
                frame_type=FRAME_NEW_CONNECTION_ID,
            )

    def is_stateless_reset(self, datagram: bytes) -> bool:
        """RFC 9000 §10.3.1: the last 16 bytes equal a token of a CID we hold."""
        if len(datagram) < 21 or not self.reset_tokens:
            return False
        tail = bytes(datagram[-RESET_TOKEN_SIZE:])
        return any(hmac.compare_digest(tail, token) for token in self.reset_tokens)


class CidTable:
    """The connection IDs of every path ID, ours and the peer's, path 0 an entry like
    any other (draft-ietf-quic-multipath §"Connection ID Management": with multipath
    each path ID has its own sequence of CIDs; without it only path 0 exists)."""

    __slots__ = ("index", "local", "peer")

    def __init__(self, local0: LocalCids, peer0: PeerCids) -> None:
        self.local: dict[int, LocalCids] = {0: local0}  # path ID -> the CIDs we issued
        self.peer: dict[int, PeerCids] = {0: peer0}  # path ID -> the CIDs the peer issued
        self.index: dict[bytes, int] = {}  # our CIDs of paths other than 0 -> path ID

    def path_of(self, dcid: bytes) -> int:
        """The path ID a 1-RTT packet with this DCID belongs to (0 when unknown)."""
        index = self.index
        return index.get(dcid, 0) if index else 0

"""Peers the kernel drops for us: a socket filter over a map of blocked addresses.

A flood costs a user-space server one system call and some Python per
datagram, however cheap the decision to drop it: at a few hundred thousand
datagrams per second the socket's queue overflows and real clients' packets
are lost with the flood's.  The endpoint decides *who* misbehaves (a peer
that never answers our Retries, one that sends datagrams that reach no
connection, see :mod:`tquic.io.admission`); this filter applies the decision
in the kernel, before the datagram is queued:

- the map's key is the peer's address and UDP port (an IPv4 address as its
  IPv4-mapped IPv6 form), its value the ``CLOCK_MONOTONIC`` nanosecond until
  which the block holds and its scope;
- scope :data:`SCOPE_TOKENLESS_INITIALS` drops only the peer's Initials that
  carry no token (RFC 9000 §17.2.2: what asks for a Retry), so a client
  that does come back with a Retry token gets through;
- scope :data:`SCOPE_ALL` drops every datagram of the peer.

Entries expire by time (the program compares with ``bpf_ktime_get_ns``); an
LRU map of bounded size forgets the oldest peer first.  Every other datagram
costs the kernel one hash lookup.  A flood that spoofs a new source for every
datagram escapes per-peer state, so token-less Initials from peers not blocked
also spend a per-socket budget (a token bucket in a one-entry array map);
beyond it they are dropped and counted, everything else still passes.  Loading needs CAP_BPF: without it
:func:`kernel_peer_filter` returns None and the endpoint's user-space limits
do the work alone.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import struct
import time
from typing import Final

from tquic.io import ebpf
from tquic.io.ebpf import (
    ADD,
    AND,
    DW,
    JEQ,
    JGE,
    JLE,
    JNE,
    JSET,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    SUB,
    B,
    H,
    Insn,
    Label,
    W,
)
from tquic.wire.version import QUIC_V1, QUIC_V2

logger = logging.getLogger("tquic.io")

__all__ = ["SCOPE_ALL", "SCOPE_TOKENLESS_INITIALS", "KernelPeerFilter", "kernel_peer_filter"]

SCOPE_TOKENLESS_INITIALS: Final = 1
SCOPE_ALL: Final = 2

_UDP_PAYLOAD = 8  # a UDP socket's filter sees the datagram from its UDP header on
_NET = -0x100000  # SKF_NET_OFF: LD_ABS offsets from the IP header
_SKB_LEN = 0  # offsetof(struct __sk_buff, len): the datagram from its UDP header
_SKB_PROTOCOL = 16  # offsetof(struct __sk_buff, protocol)
_ETH_P_IPV6 = 0xDD86  # htons(0x86DD) as the u32 the program reads on little-endian
_KEEP, _DROP = -1, 0  # a socket filter returns the bytes to keep; 0 drops
_KEY = struct.Struct("=IIIII")  # four address words as LD_ABS loads them, the port
_VALUE = struct.Struct("=QQ")  # until (ns, CLOCK_MONOTONIC), scope
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
# The budget map's one value: cost and burst (ns of credit), credit, last (ns), dropped.
_BUDGET = struct.Struct("=QQQQQ")
_COST, _BURST, _CREDIT, _LAST, _DROPPED = range(0, 40, 8)
_BUDGET_KEY = struct.pack("=I", 0)
# RFC 9000 §17.2.2 / RFC 9369 §3.2: the long-header type bits of an Initial.
_INITIAL_TYPE_BITS = ((QUIC_V1, 0x00), (QUIC_V2, 0x10))


def peer_key(host: str, port: int) -> bytes:
    """The map key of a peer, in the layout the program builds on its stack."""
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    else:
        packed = _V4_MAPPED + socket.inet_pton(socket.AF_INET, host)
    return _KEY.pack(*struct.unpack(">IIII", packed), port)


def _tokenless_initial(p: int) -> list[Insn | Label | ebpf.JumpTo]:
    """R9 = 1 when the datagram is a v1/v2 Initial without a token, else 0."""
    items: list[Insn | Label | ebpf.JumpTo] = [
        ebpf.mov_imm(R9, 0),
        ebpf.load_packet(B, p),
        ebpf.mov_reg(R8, R0),
        ebpf.jump_to(JSET, R8, 0x80, "long"),
        ebpf.goto("classified"),  # a short header
        Label("long"),
        ebpf.alu_imm(AND, R8, 0x30),
        ebpf.load_packet(W, p + 1),  # version
    ]
    for version, bits in _INITIAL_TYPE_BITS:
        items += [ebpf.jump_to(JNE, R0, version, f"not-{version:x}"),
                  ebpf.jump_to(JEQ, R8, bits, "initial"),
                  ebpf.goto("classified"),
                  Label(f"not-{version:x}")]
    items += [
        ebpf.goto("classified"),  # another version: not ours to judge
        Label("initial"),
        # RFC 9000 §17.2.2: DCID Length at 5, SCID Length after the DCID, then the
        # Token Length; a zero one-byte varint means no token.  A datagram too short
        # to say is left to user space (an indexed load past the end would drop it).
        ebpf.load_packet(B, p + 5),
        ebpf.mov_reg(R7, R0),
        ebpf.load_mem(W, R1, R6, _SKB_LEN),
        ebpf.mov_reg(R2, R7),
        ebpf.alu_imm(ADD, R2, p + 6),
        ebpf.jump_reg_to(JGE, R2, R1, "classified"),
        ebpf.load_packet_indexed(B, R7, p + 6),
        ebpf.alu_reg(ADD, R7, R0),
        ebpf.load_mem(W, R1, R6, _SKB_LEN),
        ebpf.mov_reg(R2, R7),
        ebpf.alu_imm(ADD, R2, p + 7),
        ebpf.jump_reg_to(JGE, R2, R1, "classified"),
        ebpf.load_packet_indexed(B, R7, p + 7),
        ebpf.jump_to(JNE, R0, 0, "classified"),
        ebpf.mov_imm(R9, 1),
        Label("classified"),
    ]
    return items


def _peer_key_on_stack() -> list[Insn | Label | ebpf.JumpTo]:
    """The map key at R10-24: four address words (IPv4 as ::ffff:a.b.c.d), the port."""
    items: list[Insn | Label | ebpf.JumpTo] = [
        ebpf.load_mem(W, R0, R6, _SKB_PROTOCOL),
        ebpf.jump_to(JEQ, R0, _ETH_P_IPV6, "v6"),
        ebpf.mov_imm(R1, 0),
        ebpf.store_mem(W, R10, -24, R1),
        ebpf.store_mem(W, R10, -20, R1),
        ebpf.mov_imm(R1, 0xFFFF),
        ebpf.store_mem(W, R10, -16, R1),
        ebpf.load_packet(W, _NET + 12),  # IPv4 source address
        ebpf.store_mem(W, R10, -12, R0),
        ebpf.goto("port"),
        Label("v6"),
    ]
    for word in range(4):  # IPv6 source address
        items += [ebpf.load_packet(W, _NET + 8 + 4 * word),
                  ebpf.store_mem(W, R10, -24 + 4 * word, R0)]
    return [*items, Label("port"), ebpf.load_packet(H, 0),  # UDP source port
            ebpf.store_mem(W, R10, -8, R0)]


def _initial_budget(budget_fd: int) -> list[Insn | Label | ebpf.JumpTo]:
    """A token-less Initial from a peer not blocked spends the socket's budget (a token
    bucket kept in nanoseconds of credit: one Initial costs ``cost``, credit accrues one
    per nanosecond up to ``burst``); over it, it is dropped and counted."""
    return [
        ebpf.jump_to(JEQ, R9, 0, "keep"),
        ebpf.mov_imm(R1, 0),
        ebpf.store_mem(W, R10, -28, R1),
        *ebpf.load_map_fd(R1, budget_fd),
        ebpf.mov_reg(R2, R10),
        ebpf.alu_imm(ADD, R2, -28),
        ebpf.call(ebpf.MAP_LOOKUP_ELEM),
        ebpf.jump_to(JEQ, R0, 0, "keep"),
        ebpf.mov_reg(R7, R0),
        ebpf.load_mem(DW, R1, R7, _COST),
        ebpf.jump_to(JEQ, R1, 0, "keep"),  # no budget set: unlimited
        ebpf.call(ebpf.KTIME_GET_NS),
        ebpf.mov_reg(R8, R0),
        ebpf.load_mem(DW, R2, R7, _LAST),
        ebpf.load_mem(DW, R3, R7, _CREDIT),
        # Another CPU may have moved ``last`` past our clock reading: no credit then.
        ebpf.jump_reg_to(JGE, R2, R8, "accrued"),
        ebpf.mov_reg(R4, R8),
        ebpf.alu_reg(SUB, R4, R2),
        ebpf.alu_reg(ADD, R3, R4),
        ebpf.store_mem(DW, R7, _LAST, R8),
        Label("accrued"),
        ebpf.load_mem(DW, R5, R7, _BURST),
        ebpf.jump_reg_to(JLE, R3, R5, "bounded"),
        ebpf.mov_reg(R3, R5),
        Label("bounded"),
        ebpf.load_mem(DW, R1, R7, _COST),
        ebpf.jump_reg_to(JGE, R3, R1, "spend"),
        ebpf.store_mem(DW, R7, _CREDIT, R3),
        ebpf.load_mem(DW, R1, R7, _DROPPED),
        ebpf.alu_imm(ADD, R1, 1),
        ebpf.store_mem(DW, R7, _DROPPED, R1),
        ebpf.goto("drop"),
        Label("spend"),
        ebpf.alu_reg(SUB, R3, R1),
        ebpf.store_mem(DW, R7, _CREDIT, R3),
        ebpf.goto("keep"),
    ]


def filter_program(peers_fd: int, budget_fd: int) -> list[Insn]:
    """The socket filter: classify, look the source up, drop what its live block
    covers, then hold token-less Initials to the socket's budget."""
    items: list[Insn | Label | ebpf.JumpTo] = [
        ebpf.mov_reg(R6, R1),  # LD_ABS/LD_IND read the packet through R6
        *_tokenless_initial(_UDP_PAYLOAD),
        *_peer_key_on_stack(),
        *ebpf.load_map_fd(R1, peers_fd),
        ebpf.mov_reg(R2, R10),
        ebpf.alu_imm(ADD, R2, -24),
        ebpf.call(ebpf.MAP_LOOKUP_ELEM),
        ebpf.jump_to(JEQ, R0, 0, "budget"),  # not blocked: the common case
        ebpf.mov_reg(R7, R0),
        ebpf.call(ebpf.KTIME_GET_NS),
        ebpf.load_mem(DW, R1, R7, 0),
        ebpf.jump_reg_to(JGE, R0, R1, "budget"),  # the block has expired
        ebpf.load_mem(DW, R1, R7, 8),
        ebpf.jump_to(JEQ, R1, SCOPE_ALL, "drop"),
        ebpf.jump_to(JNE, R9, 0, "drop"),  # scope: token-less Initials, and this is one
        ebpf.goto("keep"),
        Label("budget"),
        *_initial_budget(budget_fd),
        Label("keep"),
        ebpf.mov_imm(R0, _KEEP),
        ebpf.exit_insn(),
        Label("drop"),
        ebpf.mov_imm(R0, _DROP),
        ebpf.exit_insn(),
    ]
    return ebpf.assemble(items)


class KernelPeerFilter:
    """The maps and the loaded program; attach it to every socket of an endpoint.

    ``initials_per_second``: the budget of token-less Initials from peers not
    blocked (bursts of one second's worth); 0 leaves them unlimited.
    """

    def __init__(self, max_peers: int = 8192, initials_per_second: float = 0.0) -> None:
        self._map = ebpf.BpfMap(_KEY.size, _VALUE.size, max_peers)
        self._budget = ebpf.BpfMap(4, _BUDGET.size, 1, ebpf.MAP_TYPE_ARRAY)
        try:
            if initials_per_second > 0:
                cost = max(1, int(1e9 / initials_per_second))
                burst = cost * max(1, int(initials_per_second))
                self._budget.update(_BUDGET_KEY, _BUDGET.pack(cost, burst, burst, 0, 0))
            self._prog_fd = ebpf.load_socket_filter(filter_program(self._map.fd,
                                                                   self._budget.fd))
        except BaseException:
            self._map.close()
            self._budget.close()
            raise
        self.blocks = 0  # entries written

    def attach(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, ebpf.SO_ATTACH_BPF, self._prog_fd)

    def block(self, peer: tuple[str, int], seconds: float, scope: int) -> None:
        """Drop ``peer``'s datagrams (``scope``) for ``seconds`` from now."""
        until = time.monotonic_ns() + int(seconds * 1e9)
        self._map.update(peer_key(peer[0], peer[1]), _VALUE.pack(until, scope))
        self.blocks += 1

    def unblock(self, peer: tuple[str, int]) -> None:
        self._map.delete(peer_key(peer[0], peer[1]))

    def initials_over_budget(self) -> int:
        """Token-less Initials the kernel dropped over the budget so far."""
        value = self._budget.lookup(_BUDGET_KEY)
        return _BUDGET.unpack(value)[4] if value is not None else 0

    def close(self) -> None:
        if self._prog_fd >= 0:
            os.close(self._prog_fd)
            self._prog_fd = -1
        self._map.close()
        self._budget.close()


def kernel_peer_filter(max_peers: int = 8192,
                       initials_per_second: float = 0.0) -> KernelPeerFilter | None:
    """A filter, or None where the kernel refuses one (no CAP_BPF, no eBPF): said
    once per process at info level, since the user-space limits still hold."""
    try:
        return KernelPeerFilter(max_peers, initials_per_second)
    except OSError as exc:  # EbpfError included
        _log_unavailable(str(exc))
        return None


@functools.cache
def _log_unavailable(reason: str) -> None:
    """Once per process and reason: the user-space limits still hold."""
    logger.info("kernel peer filter unavailable (%s): floods are dropped in user space only",
                reason)

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
costs the kernel one hash lookup.  Loading needs CAP_BPF: without it
:func:`kernel_peer_filter` returns None and the endpoint's user-space limits
do the work alone.
"""

from __future__ import annotations

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
    JNE,
    JSET,
    R0,
    R1,
    R2,
    R6,
    R7,
    R8,
    R9,
    R10,
    B,
    EbpfError,
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
_SKB_PROTOCOL = 16  # offsetof(struct __sk_buff, protocol)
_ETH_P_IPV6 = 0xDD86  # htons(0x86DD) as the u32 the program reads on little-endian
_KEEP, _DROP = -1, 0  # a socket filter returns the bytes to keep; 0 drops
_KEY = struct.Struct("=IIIII")  # four address words as LD_ABS loads them, the port
_VALUE = struct.Struct("=QQ")  # until (ns, CLOCK_MONOTONIC), scope
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
# RFC 9000 §17.2.2 / RFC 9369 §3.2: the long-header type bits of an Initial.
_INITIAL_TYPE_BITS = ((QUIC_V1, 0x00), (QUIC_V2, 0x10))


def peer_key(host: str, port: int) -> bytes:
    """The map key of a peer, in the layout the program builds on its stack."""
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    else:
        packed = _V4_MAPPED + socket.inet_pton(socket.AF_INET, host)
    return _KEY.pack(*struct.unpack(">IIII", packed), port)


def filter_program(map_fd: int) -> list[Insn]:
    """The socket filter: look the source up, drop what its live block covers."""
    p = _UDP_PAYLOAD
    items: list[Insn | Label | ebpf.JumpTo] = [
        ebpf.mov_reg(R6, R1),  # LD_ABS/LD_IND read the packet through R6
        # The key, on the stack at R10-24: four address words, then the port.
        ebpf.load_mem(W, R0, R6, _SKB_PROTOCOL),
        ebpf.jump_to(JEQ, R0, _ETH_P_IPV6, "v6"),
        ebpf.mov_imm(R1, 0),
        ebpf.store_mem(W, R10, -24, R1),
        ebpf.store_mem(W, R10, -20, R1),
        ebpf.mov_imm(R1, 0xFFFF),
        ebpf.store_mem(W, R10, -16, R1),
        ebpf.load_packet(W, _NET + 12),  # IPv4 source address
        ebpf.store_mem(W, R10, -12, R0),
        ebpf.jump_to(ebpf.JA, R0, 0, "port"),
        Label("v6"),
    ]
    for word in range(4):  # IPv6 source address
        items += [ebpf.load_packet(W, _NET + 8 + 4 * word),
                  ebpf.store_mem(W, R10, -24 + 4 * word, R0)]
    items += [
        Label("port"),
        ebpf.load_packet(H, 0),  # UDP source port
        ebpf.store_mem(W, R10, -8, R0),
        *ebpf.load_map_fd(R1, map_fd),
        ebpf.mov_reg(R2, R10),
        ebpf.alu_imm(ADD, R2, -24),
        ebpf.call(ebpf.MAP_LOOKUP_ELEM),
        ebpf.jump_to(JEQ, R0, 0, "keep"),  # not blocked: the common case
        ebpf.mov_reg(R7, R0),
        ebpf.call(ebpf.KTIME_GET_NS),
        ebpf.load_mem(DW, R1, R7, 0),
        ebpf.jump_reg_to(JGE, R0, R1, "keep"),  # the block has expired
        ebpf.load_mem(DW, R1, R7, 8),
        ebpf.jump_to(JEQ, R1, SCOPE_ALL, "drop"),
        # Scope: Initials without a token.  Long header?
        ebpf.load_packet(B, p),
        ebpf.mov_reg(R8, R0),
        ebpf.jump_to(JSET, R8, 0x80, "long"),
        ebpf.jump_to(ebpf.JA, R0, 0, "keep"),
        Label("long"),
        ebpf.alu_imm(AND, R8, 0x30),
        ebpf.load_packet(W, p + 1),  # version
    ]
    for version, bits in _INITIAL_TYPE_BITS:
        items += [ebpf.jump_to(JNE, R0, version, f"not-{version:x}"),
                  ebpf.jump_to(JEQ, R8, bits, "initial"),
                  ebpf.jump_to(ebpf.JA, R0, 0, "keep"),
                  Label(f"not-{version:x}")]
    items += [
        ebpf.jump_to(ebpf.JA, R0, 0, "keep"),  # another version: not ours to judge
        Label("initial"),
        # RFC 9000 §17.2.2: DCID Length at 5, SCID Length after the DCID, then the
        # Token Length; a zero one-byte varint means no token.
        ebpf.load_packet(B, p + 5),
        ebpf.mov_reg(R9, R0),
        ebpf.load_packet_indexed(B, R9, p + 6),
        ebpf.alu_reg(ADD, R9, R0),
        ebpf.load_packet_indexed(B, R9, p + 7),
        ebpf.jump_to(JEQ, R0, 0, "drop"),
        Label("keep"),
        ebpf.mov_imm(R0, _KEEP),
        ebpf.exit_insn(),
        Label("drop"),
        ebpf.mov_imm(R0, _DROP),
        ebpf.exit_insn(),
    ]
    return ebpf.assemble(items)


class KernelPeerFilter:
    """The map and the loaded program; attach it to every socket of an endpoint."""

    def __init__(self, max_peers: int = 8192) -> None:
        self._map = ebpf.HashMap(_KEY.size, _VALUE.size, max_peers)
        try:
            self._prog_fd = ebpf.load_socket_filter(filter_program(self._map.fd))
        except BaseException:
            self._map.close()
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

    def close(self) -> None:
        if self._prog_fd >= 0:
            os.close(self._prog_fd)
            self._prog_fd = -1
        self._map.close()


_unavailable_logged: list[bool] = []


def kernel_peer_filter(max_peers: int = 8192) -> KernelPeerFilter | None:
    """A filter, or None where the kernel refuses one (no CAP_BPF, no eBPF): said
    once per process at info level, since the user-space limits still hold."""
    try:
        return KernelPeerFilter(max_peers)
    except (EbpfError, OSError) as exc:
        if not _unavailable_logged:
            _unavailable_logged.append(True)
            logger.info("kernel peer filter unavailable (%s): floods are dropped in user "
                        "space only", exc)
        return None

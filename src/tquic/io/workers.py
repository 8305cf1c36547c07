"""Several server processes on one UDP port: SO_REUSEPORT and in-kernel CID steering.

A server with ``--workers N`` binds N sockets to one address with
SO_REUSEPORT, attaches one classic BPF program to the group
(SO_ATTACH_REUSEPORT_CBPF) and forks one process per socket.  The kernel then
picks the socket of every arriving datagram:

- a short header (1-RTT) carries a connection ID we issued; its QUIC-LB
  first octet XOR its last octet gives the worker (tquic.wire.quic_lb), so
  every packet of a connection -- after migration too, from any address --
  reaches the process that holds it;
- a long header (a client's Initial, 0-RTT, Handshake) gets an out-of-range
  answer, and the kernel falls back to its 4-tuple hash: new clients spread
  over the workers and stay on one for the whole handshake.

No user-space hop, no shared state between the workers but the keys
(token, stateless-reset, session-ticket), which the parent makes before it
forks.  The same CIDs carry a QUIC-LB server ID, so a CID-routing load
balancer can spread machines the same way (docs/hardening.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import logging
import os
import signal
import socket
import struct
from collections.abc import Callable
from typing import Any

from tquic.io.udp import UdpSocket
from tquic.wire.quic_lb import MAX_WORKERS, QuicLbConfig, QuicLbEncoder

logger = logging.getLogger("tquic.io")

SO_ATTACH_REUSEPORT_CBPF = 51  # include/uapi/asm-generic/socket.h

# Classic BPF opcodes (include/uapi/linux/filter.h).
_LD_B_ABS = 0x30
_JSET_K = 0x45
_TAX = 0x07
_XOR_X = 0xAC
_AND_K = 0x54
_MOD_K = 0x94
_RET_A = 0x16
_RET_K = 0x06
_FALLBACK = 0xFFFFFFFF  # >= group size: the kernel uses its own 4-tuple hash

_INSN = struct.Struct("=HBBI")


def steering_program(workers: int, cid_length: int) -> list[tuple[int, int, int, int]]:
    """The cBPF instructions (code, jt, jf, k); offsets are into the UDP payload."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers: must be within [1, {MAX_WORKERS}]")
    if not 2 <= cid_length <= 20:
        raise ValueError("cid_length: must be within [2, 20]")
    return [
        (_LD_B_ABS, 0, 0, 0),               # A = first byte
        (_JSET_K, 7, 0, 0x80),              # long header -> fall back to the hash
        (_LD_B_ABS, 0, 0, cid_length),      # A = last octet of the DCID (at 1 + len - 1)
        (_TAX, 0, 0, 0),                    # X = A
        (_LD_B_ABS, 0, 0, 1),               # A = first octet of the DCID
        (_XOR_X, 0, 0, 0),                  # A ^= X
        (_AND_K, 0, 0, 0x1F),               # the five worker bits
        (_MOD_K, 0, 0, workers),            # a forged CID still lands on a worker
        (_RET_A, 0, 0, 0),
        (_RET_K, 0, 0, _FALLBACK),
    ]


def attach_steering(sock: socket.socket, workers: int, cid_length: int) -> None:
    """Attach the steering program to ``sock``'s reuseport group (raises OSError)."""
    program = steering_program(workers, cid_length)
    buffer = ctypes.create_string_buffer(b"".join(_INSN.pack(*insn) for insn in program))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def reuseport_group(host: str, port: int, workers: int, cid_length: int, *,
                    device: str | None = None) -> tuple[list[UdpSocket], bool]:
    """``workers`` sockets bound to one address, in the order the program indexes them.

    Returns the sockets and whether the steering program is attached (False:
    the kernel refused it and spreads by 4-tuple hash only, so a connection
    that migrates may reach the wrong worker).
    """
    sockets: list[UdpSocket] = []
    try:
        for _ in range(workers):
            sock = UdpSocket.bind(host, port, device=device, reuse_port=True, pktinfo=True)
            sockets.append(sock)
            port = sock.local_address[1]  # port 0: the others join the first one's port
        steered = True
        try:
            attach_steering(sockets[0].sock, workers, cid_length)
        except OSError as exc:
            logger.warning("SO_ATTACH_REUSEPORT_CBPF refused (%s): 4-tuple hashing only", exc)
            steered = False
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, steered


def lb_config(server_id: bytes = b"\x01", key: bytes | None = None,
              config_id: int = 0) -> QuicLbConfig:
    """The QUIC-LB configuration of a server's CIDs (raises QuicLbError): server ID +
    nonce = 7 octets at least, an 8-octet CID for a one-octet ID."""
    return QuicLbConfig(server_id, max(6, 7 - len(server_id)), config_id, key)


def farm_keys(secret: bytes) -> dict[str, bytes]:
    """The token and stateless-reset keys of a server farm, from one shared secret
    (two labelled hashes: knowing one key does not give the other)."""
    return {"token_key": hashlib.sha256(b"tquic token key\x00" + secret).digest(),
            "stateless_reset_key": hashlib.sha256(b"tquic reset key\x00" + secret).digest()}


def worker_changes(lb: QuicLbConfig, worker: int) -> dict[str, Any]:
    """The QuicConfiguration fields that make worker ``worker``'s CIDs route to it (its
    index in the QUIC-LB first octet, which the steering program reads)."""
    return {"connection_id_length": lb.cid_length,
            "connection_id_generator": QuicLbEncoder(lb, worker=worker)}


# The collector's young-generation threshold for a server process (CPython's default
# is 700 allocations): a handshake allocates a few thousand objects, and since a
# finished connection holds no reference cycle (core/owner_ref.py) reference counting
# frees them; the young count only grows by what survives, so collections are rare
# and cheap at this threshold (docs/hardening.md, "Connections without reference
# cycles": 3.6 % of the stress server's CPU at 10,000, 0.2 % at 100,000).
SERVER_GC_THRESHOLD = 100_000


def tune_collector_for_server() -> None:
    """Collector settings for a process that is a server and nothing else (``tquic
    server``, its workers, benchmarks/stress.py's server): what exists at start-up
    (modules, configuration, certificates) is frozen out of every collection, and
    young collections run every SERVER_GC_THRESHOLD allocations, not 700.  Measured
    (benchmarks/stress.py handshakes row): collector time from ~14 % of the server's
    CPU (CPython's defaults) to 0.2 %.  Not for a library process: the application
    owns its collector."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(SERVER_GC_THRESHOLD, gen1, gen2)


def run_workers(sockets: list[UdpSocket], target: Callable[[int, UdpSocket], int]) -> int:
    """Fork one process per socket running ``target(index, socket)``; wait for all.

    SIGINT/SIGTERM to the parent reach every worker; the exit status is the
    first non-zero worker status (0 when all exit cleanly).
    """
    children: dict[int, int] = {}
    for index, sock in enumerate(sockets):
        pid = os.fork()
        if pid == 0:  # the worker: keep only its own socket
            code = 1
            try:
                for other in sockets:
                    if other is not sock:
                        other.close()
                code = target(index, sock)
            except KeyboardInterrupt:
                code = 0
            except BaseException:
                logger.exception("worker %d failed", index)
            finally:
                os._exit(code)
        children[pid] = index
    for sock in sockets:
        sock.close()

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        while children:
            try:
                pid, raw = os.wait()
            except ChildProcessError:
                break
            children.pop(pid, None)
            code = os.waitstatus_to_exitcode(raw)
            if code and not status:
                status = code if code > 0 else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status

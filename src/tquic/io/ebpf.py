"""Just enough eBPF to load a socket filter with one hash map, from Python.

The ``bpf(2)`` system call through ctypes: create a map, update and delete its
entries, load a program (the verifier's log comes back in the error), and the
few instruction encodings our filters use (include/uapi/linux/bpf.h,
Documentation/bpf/standardization/instruction-set.rst).  No compiler, no
libbpf: the programs are short enough to write as instruction lists, and the
kernel's verifier checks them at load time.

Loading needs CAP_BPF (root here); :class:`EbpfError` says why it failed, and
callers fall back to doing the same work in user space.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import struct
from dataclasses import dataclass

__all__ = ["SO_ATTACH_BPF", "BpfMap", "EbpfError", "Insn", "load_socket_filter"]

SO_ATTACH_BPF = 50  # include/uapi/asm-generic/socket.h

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280}.get(platform.machine())

# bpf(2) commands and types (include/uapi/linux/bpf.h).
_MAP_CREATE, _MAP_LOOKUP_ELEM, _MAP_UPDATE_ELEM, _MAP_DELETE_ELEM, _PROG_LOAD = 0, 1, 2, 3, 5
MAP_TYPE_ARRAY = 2
MAP_TYPE_LRU_HASH = 9
PROG_TYPE_SOCKET_FILTER = 1
_ATTR_SIZE = 128  # zero-filled bpf_attr, larger than any field we set
_LOG_SIZE = 1 << 16

# Opcode parts.
LD, LDX, STX, ALU64, JMP = 0x00, 0x01, 0x03, 0x07, 0x05
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, ABS, IND, MEM = 0x00, 0x20, 0x40, 0x60
K, X = 0x00, 0x08
ADD, SUB, AND, MOV = 0x00, 0x10, 0x50, 0xB0
JA, JEQ, JGE, JSET, JNE, CALL, EXIT, JLE = 0x00, 0x10, 0x30, 0x40, 0x50, 0x80, 0x90, 0xB0
PSEUDO_MAP_FD = 1

# Helper functions (enum bpf_func_id).
MAP_LOOKUP_ELEM = 1
KTIME_GET_NS = 5

# Registers: R0 result, R1-R5 arguments (clobbered by calls and LD_ABS/LD_IND),
# R6-R9 kept across calls, R10 the read-only frame pointer.
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

_INSN = struct.Struct("<BBhi")


class EbpfError(OSError):
    """The kernel refused a map or program (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class Insn:
    """One 8-byte eBPF instruction."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        return _INSN.pack(self.code, (self.src << 4) | self.dst, self.off, self.imm)


def mov_imm(dst: int, imm: int) -> Insn:
    return Insn(ALU64 | MOV | K, dst, imm=imm)


def mov_reg(dst: int, src: int) -> Insn:
    return Insn(ALU64 | MOV | X, dst, src)


def alu_imm(op: int, dst: int, imm: int) -> Insn:
    return Insn(ALU64 | op | K, dst, imm=imm)


def alu_reg(op: int, dst: int, src: int) -> Insn:
    return Insn(ALU64 | op | X, dst, src)


def load_packet(size: int, offset: int) -> Insn:
    """R0 = the packet's ``size`` bytes at ``offset``, in host order (legacy LD_ABS:
    a read beyond the packet ends the program with 0, i.e. drops the packet)."""
    return Insn(LD | ABS | size, imm=offset)


def load_packet_indexed(size: int, index: int, offset: int) -> Insn:
    """R0 = the packet's ``size`` bytes at ``index`` register + ``offset`` (LD_IND)."""
    return Insn(LD | IND | size, src=index, imm=offset)


def load_mem(size: int, dst: int, src: int, off: int) -> Insn:
    return Insn(LDX | MEM | size, dst, src, off)


def store_mem(size: int, dst: int, off: int, src: int) -> Insn:
    return Insn(STX | MEM | size, dst, src, off)


def call(helper: int) -> Insn:
    return Insn(JMP | CALL, imm=helper)


def exit_insn() -> Insn:
    return Insn(JMP | EXIT)


def load_map_fd(dst: int, fd: int) -> list[Insn]:
    """``dst`` = the map with file descriptor ``fd`` (a two-slot LD_IMM64)."""
    return [Insn(LD | DW | IMM, dst, PSEUDO_MAP_FD, imm=fd), Insn(0)]


@dataclass(frozen=True, slots=True)
class Label:
    """A place in a program that jumps name (see :func:`assemble`)."""

    name: str


@dataclass(frozen=True, slots=True)
class JumpTo:
    """A jump whose offset :func:`assemble` fills in from the label ``target``."""

    insn: Insn
    target: str


def jump_to(op: int, dst: int, imm: int, target: str) -> JumpTo:
    """``if dst <op> imm goto target``."""
    return JumpTo(Insn(JMP | op | K, dst, imm=imm), target)


def goto(target: str) -> JumpTo:
    return JumpTo(Insn(JMP | JA), target)


def jump_reg_to(op: int, dst: int, src: int, target: str) -> JumpTo:
    """``if dst <op> src goto target``."""
    return JumpTo(Insn(JMP | op | X, dst, src), target)


def assemble(items: list[Insn | Label | JumpTo]) -> list[Insn]:
    """Instructions with jump offsets resolved from labels (an offset counts the
    instructions between the jump and its target)."""
    places: dict[str, int] = {}
    index = 0
    for item in items:
        if isinstance(item, Label):
            if item.name in places:
                raise ValueError(f"label {item.name!r} defined twice")
            places[item.name] = index
        else:
            index += 1
    out: list[Insn] = []
    for item in items:
        if isinstance(item, Label):
            continue
        if isinstance(item, JumpTo):
            if item.target not in places:
                raise ValueError(f"jump to undefined label {item.target!r}")
            offset = places[item.target] - len(out) - 1
            item = Insn(item.insn.code, item.insn.dst, item.insn.src, offset, item.insn.imm)
        out.append(item)
    return out


@functools.cache
def _syscall() -> ctypes._NamedFuncPointer:
    """libc's syscall(2), from the symbols already loaded in the process."""
    if _SYS_BPF is None:
        raise EbpfError(f"bpf(2) number unknown on {platform.machine()}")
    function = ctypes.CDLL(None, use_errno=True).syscall
    function.restype = ctypes.c_long
    function.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint)
    return function


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    result = int(_syscall()(_SYS_BPF, command, ctypes.addressof(attr), _ATTR_SIZE))
    if result < 0:
        errno = ctypes.get_errno()
        raise EbpfError(errno, f"{what}: {os.strerror(errno)}")
    return result


class BpfMap:
    """A BPF map with fixed-size byte keys and values (by default an LRU hash: the
    least recently used entry makes room for a new one); the file descriptor stays
    open until :meth:`close`."""

    def __init__(self, key_size: int, value_size: int, max_entries: int,
                 map_type: int = MAP_TYPE_LRU_HASH) -> None:
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        struct.pack_into("<IIII", attr, 0, map_type, key_size, value_size, max_entries)
        self.fd = _bpf(_MAP_CREATE, attr, "BPF_MAP_CREATE")
        self.key_size = key_size
        self.value_size = value_size
        # Reused buffers: one update costs a system call, no allocation.
        self._key = ctypes.create_string_buffer(key_size)
        self._value = ctypes.create_string_buffer(value_size)
        self._attr = ctypes.create_string_buffer(_ATTR_SIZE)

    def _elem_attr(self, key: bytes, with_value: bool = True) -> ctypes.Array[ctypes.c_char]:
        # union bpf_attr for element commands: map_fd, pad, key, value, flags (the
        # kernel refuses a delete whose unused value field is not zero).
        if len(key) != self.key_size:
            raise ValueError(f"key: {len(key)} bytes, the map's keys have {self.key_size}")
        self._key.raw = key
        value = ctypes.addressof(self._value) if with_value else 0
        struct.pack_into("<IIQQQ", self._attr, 0, self.fd, 0, ctypes.addressof(self._key),
                         value, 0)
        return self._attr

    def update(self, key: bytes, value: bytes) -> None:
        if len(value) != self.value_size:
            raise ValueError(f"value: {len(value)} bytes, the map's have {self.value_size}")
        self._value.raw = value
        _bpf(_MAP_UPDATE_ELEM, self._elem_attr(key), "BPF_MAP_UPDATE_ELEM")

    def lookup(self, key: bytes) -> bytes | None:
        try:
            _bpf(_MAP_LOOKUP_ELEM, self._elem_attr(key), "BPF_MAP_LOOKUP_ELEM")
        except EbpfError as exc:
            if exc.errno == 2:  # ENOENT
                return None
            raise
        return bytes(self._value.raw)

    def delete(self, key: bytes) -> bool:
        try:
            _bpf(_MAP_DELETE_ELEM, self._elem_attr(key, with_value=False), "BPF_MAP_DELETE_ELEM")
        except EbpfError as exc:
            if exc.errno == 2:
                return False
            raise
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def load_socket_filter(program: list[Insn], licence_name: str = "MIT") -> int:
    """Load ``program`` as a socket filter; returns its file descriptor (attach it with
    ``setsockopt(SOL_SOCKET, SO_ATTACH_BPF, fd)``).  A refusal carries the verifier's
    log, which names the instruction it objected to."""
    code = ctypes.create_string_buffer(b"".join(insn.encode() for insn in program))
    licence = ctypes.create_string_buffer(licence_name.encode())
    log = ctypes.create_string_buffer(_LOG_SIZE)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
    struct.pack_into("<IIQQIIQ", attr, 0, PROG_TYPE_SOCKET_FILTER, len(program),
                     ctypes.addressof(code), ctypes.addressof(licence), 1, _LOG_SIZE,
                     ctypes.addressof(log))
    try:
        return _bpf(_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except EbpfError as exc:
        detail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise EbpfError(exc.errno, f"{exc.strerror}; verifier: {' | '.join(detail)}") from None

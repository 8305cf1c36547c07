"""Buffer: integers, variable-length integers and byte strings (RFC 9000 §16).

One class serves both directions.  ``Buffer(data)`` reads from existing bytes;
``Buffer()`` starts empty for writing.  Reads past the end raise
:class:`~tquic.wire.errors.BufferReadError`, never ``IndexError`` or
``struct.error``.
"""

from __future__ import annotations

import struct

from tquic.wire.errors import BufferReadError

VARINT_MAX = (1 << 62) - 1

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_pack_u16 = _U16.pack
_pack_u32 = _U32.pack
_pack_u64 = _U64.pack
_unpack_u16 = _U16.unpack_from
_unpack_u32 = _U32.unpack_from
_unpack_u64 = _U64.unpack_from


def varint_size(value: int) -> int:
    """Bytes needed to encode ``value`` as a varint (RFC 9000 §16, Table 4)."""
    if value < 0x40:
        if value < 0:
            raise ValueError(f"varint cannot be negative: {value}")
        return 1
    if value < 0x4000:
        return 2
    if value < 0x40000000:
        return 4
    if value <= VARINT_MAX:
        return 8
    raise ValueError(f"{value} does not fit in a QUIC varint (max 2^62-1)")


def encode_varint(value: int) -> bytes:
    """Encode ``value`` in the shortest varint form (RFC 9000 §16)."""
    if value < 0x40:
        if value < 0:
            raise ValueError(f"varint cannot be negative: {value}")
        return bytes((value,))
    if value < 0x4000:
        return _pack_u16(value | 0x4000)
    if value < 0x40000000:
        return _pack_u32(value | 0x80000000)
    if value <= VARINT_MAX:
        return _pack_u64(value | 0xC000000000000000)
    raise ValueError(f"{value} does not fit in a QUIC varint (max 2^62-1)")


class Buffer:
    """A read cursor over bytes, or a growable write buffer."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview | None = None) -> None:
        if data is None:
            self._data: bytes | bytearray = bytearray()
        elif isinstance(data, bytes | bytearray):
            self._data = data
        else:
            self._data = bytes(data)
        self._pos = 0
        self._end = len(self._data)

    # -- cursor ------------------------------------------------------------

    def tell(self) -> int:
        """Current read position."""
        return self._pos

    def seek(self, pos: int) -> None:
        """Move the read position; raises BufferReadError outside the data."""
        if pos < 0 or pos > self._end:
            raise BufferReadError(f"seek to {pos} outside 0..{self._end}")
        self._pos = pos

    def eof(self) -> bool:
        """True when every byte has been read."""
        return self._pos >= self._end

    @property
    def remaining(self) -> int:
        """Bytes left to read."""
        return self._end - self._pos

    @property
    def data(self) -> bytes:
        """Everything in the buffer (written or given), as bytes."""
        return bytes(self._data)

    def data_slice(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of the buffer, independent of the cursor."""
        if start < 0 or end > len(self._data) or start > end:
            raise BufferReadError(f"slice {start}:{end} outside 0..{len(self._data)}")
        return bytes(self._data[start:end])

    def __len__(self) -> int:
        return len(self._data)

    # -- reading -----------------------------------------------------------

    def pull_bytes(self, length: int) -> bytes:
        """Read exactly ``length`` bytes."""
        pos = self._pos
        end = pos + length
        if length < 0 or end > self._end:
            raise BufferReadError(f"need {length} bytes, {self._end - pos} left")
        self._pos = end
        return bytes(self._data[pos:end])

    def pull_rest(self) -> bytes:
        """Read every remaining byte."""
        pos = self._pos
        self._pos = self._end
        return bytes(self._data[pos : self._end])

    def pull_uint8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise BufferReadError("need 1 byte, 0 left")
        self._pos = pos + 1
        return self._data[pos]

    def pull_uint16(self) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            raise BufferReadError(f"need 2 bytes, {self._end - pos} left")
        self._pos = pos + 2
        return int(_unpack_u16(self._data, pos)[0])

    def pull_uint24(self) -> int:
        pos = self._pos
        if pos + 3 > self._end:
            raise BufferReadError(f"need 3 bytes, {self._end - pos} left")
        self._pos = pos + 3
        return int.from_bytes(self._data[pos : pos + 3], "big")

    def pull_uint32(self) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            raise BufferReadError(f"need 4 bytes, {self._end - pos} left")
        self._pos = pos + 4
        return int(_unpack_u32(self._data, pos)[0])

    def pull_uint64(self) -> int:
        pos = self._pos
        if pos + 8 > self._end:
            raise BufferReadError(f"need 8 bytes, {self._end - pos} left")
        self._pos = pos + 8
        return int(_unpack_u64(self._data, pos)[0])

    def pull_varint(self) -> int:
        """Read a variable-length integer (RFC 9000 §16)."""
        pos = self._pos
        if pos >= self._end:
            raise BufferReadError("need a varint, 0 bytes left")
        data = self._data
        first = data[pos]
        prefix = first >> 6
        if prefix == 0:
            self._pos = pos + 1
            return first
        if prefix == 1:
            if pos + 2 > self._end:
                raise BufferReadError("truncated 2-byte varint")
            self._pos = pos + 2
            return int(_unpack_u16(data, pos)[0]) & 0x3FFF
        if prefix == 2:
            if pos + 4 > self._end:
                raise BufferReadError("truncated 4-byte varint")
            self._pos = pos + 4
            return int(_unpack_u32(data, pos)[0]) & 0x3FFFFFFF
        if pos + 8 > self._end:
            raise BufferReadError("truncated 8-byte varint")
        self._pos = pos + 8
        return int(_unpack_u64(data, pos)[0]) & 0x3FFFFFFFFFFFFFFF

    def pull_varint_bytes(self) -> bytes:
        """Read a varint length followed by that many bytes."""
        return self.pull_bytes(self.pull_varint())

    # -- writing -----------------------------------------------------------

    def _writable(self) -> bytearray:
        data = self._data
        if not isinstance(data, bytearray):
            raise TypeError("this Buffer was created for reading; use Buffer() to write")
        return data

    def push_bytes(self, value: bytes | bytearray | memoryview) -> None:
        self._writable().extend(value)

    def push_uint8(self, value: int) -> None:
        self._writable().append(value)

    def push_uint16(self, value: int) -> None:
        self._writable().extend(_pack_u16(value))

    def push_uint24(self, value: int) -> None:
        self._writable().extend(value.to_bytes(3, "big"))

    def push_uint32(self, value: int) -> None:
        self._writable().extend(_pack_u32(value))

    def push_uint64(self, value: int) -> None:
        self._writable().extend(_pack_u64(value))

    def push_varint(self, value: int) -> None:
        """Append ``value`` as the shortest varint (RFC 9000 §16)."""
        self._writable().extend(encode_varint(value))

    def push_varint_bytes(self, value: bytes) -> None:
        """Append a varint length then the bytes."""
        data = self._writable()
        data.extend(encode_varint(len(value)))
        data.extend(value)

"""TLS presentation-language vectors (RFC 9846 §3): a strict reader and writers.

Every read failure is a ``decode_error`` alert (RFC 9846 §6.2: "a message
could not be decoded because some field was out of the specified range or
the length of the message was incorrect"), never an IndexError.
"""

from __future__ import annotations

from tquic.crypto.tls.alerts import AlertDescription, TlsAlert

__all__ = ["Reader", "decode_error", "u8", "u16", "u24", "u32", "vec8", "vec16", "vec24"]


def decode_error(reason: str) -> TlsAlert:
    return TlsAlert(AlertDescription.decode_error, reason)


class Reader:
    """A cursor over one message or extension body."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._end = len(data)

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _take(self, n: int, what: str) -> bytes:
        pos = self._pos
        if n > self._end - pos:
            raise decode_error(f"{what}: need {n} bytes, {self._end - pos} left")
        self._pos = pos + n
        return self._data[pos : pos + n]

    def u8(self, what: str = "uint8") -> int:
        return self._take(1, what)[0]

    def u16(self, what: str = "uint16") -> int:
        return int.from_bytes(self._take(2, what), "big")

    def u24(self, what: str = "uint24") -> int:
        return int.from_bytes(self._take(3, what), "big")

    def u32(self, what: str = "uint32") -> int:
        return int.from_bytes(self._take(4, what), "big")

    def raw(self, n: int, what: str = "bytes") -> bytes:
        return self._take(n, what)

    def vector(
        self, len_size: int, what: str, min_len: int = 0, max_len: int | None = None
    ) -> bytes:
        """A ``<min..max>`` vector with a ``len_size``-byte length prefix."""
        n = int.from_bytes(self._take(len_size, what + " length"), "big")
        if n < min_len or (max_len is not None and n > max_len):
            raise decode_error(f"{what}: length {n} outside {min_len}..{max_len}")
        return self._take(n, what)

    def sub(self, len_size: int, what: str, min_len: int = 0, max_len: int | None = None) -> Reader:
        """A reader over a length-prefixed sub-structure."""
        return Reader(self.vector(len_size, what, min_len, max_len))

    def done(self, what: str) -> None:
        """Trailing bytes are forbidden (RFC 9846 §4.2)."""
        if self._pos != self._end:
            raise decode_error(f"{what}: {self._end - self._pos} trailing bytes")


def u8(v: int) -> bytes:
    return bytes((v,))


def u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


def u24(v: int) -> bytes:
    return v.to_bytes(3, "big")


def u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def vec8(data: bytes) -> bytes:
    if len(data) > 0xFF:
        raise ValueError("vector too long for an 8-bit length")
    return bytes((len(data),)) + data


def vec16(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("vector too long for a 16-bit length")
    return len(data).to_bytes(2, "big") + data


def vec24(data: bytes) -> bytes:
    if len(data) > 0xFFFFFF:
        raise ValueError("vector too long for a 24-bit length")
    return len(data).to_bytes(3, "big") + data

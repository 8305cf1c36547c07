"""The bytes a stream sender holds (written and not yet acknowledged), kept as the
chunks the application wrote.

A bytearray appended to at the end and trimmed at the front as data is acknowledged
copies everything it holds each time it grows by an eighth (CPython's growth rule
once the front was trimmed): with megabytes in flight, every byte sent was copied
about eight times (benchmarks/bulk.py: 0.5-0.8 CPU s/GB for an 8-16 MB window).
Here a write keeps a reference to the application's bytes, a packet reads its data
with one slice, and a chunk is dropped whole once acknowledged.  Writes smaller than
``MIN_CHUNK`` are gathered first, so a packet never joins many tiny pieces.
"""

from __future__ import annotations

from bisect import bisect_right

MIN_CHUNK = 16 << 10  # smaller writes are gathered into chunks of about this size
_COMPACT = 64  # dropped chunk slots tolerated before the lists are compacted


class SendBuffer:
    """Stream bytes from ``start`` (first byte not yet dropped) to ``end`` (written)."""

    __slots__ = ("_chunks", "_cursor", "_head", "_starts", "_tail", "end", "start")

    def __init__(self, offset: int = 0) -> None:
        self._chunks: list[bytes] = []
        self._starts: list[int] = []  # stream offset of each chunk
        self._head = 0  # chunks before this index were dropped (b"" placeholders)
        self._cursor = 0  # index of the chunk the last read ended in (reads run forward)
        self._tail = bytearray()  # small writes not yet made a chunk; it ends at ``end``
        self.start = offset
        self.end = offset

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def referenced_bytes(self) -> int:
        """Bytes of memory the buffer references: its chunks, the part of the first one
        below ``start`` included (a chunk is freed whole), and the small writes gathered."""
        return sum(map(len, self._chunks)) + len(self._tail)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        if not n:
            return
        if n >= MIN_CHUNK:
            if self._tail:
                self._seal_tail()
            self._chunks.append(data if type(data) is bytes else bytes(data))
            self._starts.append(self.end)
        else:
            self._tail += data
            if len(self._tail) >= MIN_CHUNK:
                self._seal_tail(n)
        self.end += n

    def _seal_tail(self, pending: int = 0) -> None:
        """Make the gathered small writes a chunk (``pending``: bytes of it not yet
        counted in ``end``)."""
        tail = self._tail
        self._chunks.append(bytes(tail))
        self._starts.append(self.end + pending - len(tail))
        self._tail = bytearray()

    def read(self, start: int, stop: int) -> bytes:
        """The bytes [start, stop), which must lie within [self.start, self.end]."""
        if stop <= start:
            return b""
        if stop > self.end - len(self._tail) and self._tail:
            self._seal_tail()
        starts = self._starts
        chunks = self._chunks
        i = self._cursor
        if not (i < len(chunks) and starts[i] <= start < starts[i] + len(chunks[i])):
            i = bisect_right(starts, start, self._head) - 1
        chunk = chunks[i]
        first = start - starts[i]
        if stop - starts[i] <= len(chunk):
            self._cursor = i
            return chunk[first:first + stop - start]  # one copy (none for a whole chunk)
        parts = [chunk[first:]]
        while True:
            i += 1
            chunk = chunks[i]
            if stop - starts[i] <= len(chunk):
                parts.append(chunk[:stop - starts[i]])
                self._cursor = i
                return b"".join(parts)
            parts.append(chunk)

    def drop_below(self, offset: int) -> None:
        """Forget the bytes below ``offset`` (acknowledged): whole chunks are freed."""
        if offset <= self.start:
            return
        self.start = offset
        chunks = self._chunks
        starts = self._starts
        head = self._head
        count = len(chunks)
        while head < count and starts[head] + len(chunks[head]) <= offset:
            chunks[head] = b""
            head += 1
        if head > _COMPACT and head * 2 > count:
            del chunks[:head]
            del starts[:head]
            self._cursor = max(0, self._cursor - head)
            head = 0
        self._head = head

    def clear(self, offset: int) -> None:
        """Hold nothing; the next byte written is at ``offset``."""
        self._chunks = []
        self._starts = []
        self._head = self._cursor = 0
        self._tail = bytearray()
        self.start = self.end = offset

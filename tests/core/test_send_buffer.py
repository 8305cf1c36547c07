"""SendBuffer holds exactly the bytes written and not yet dropped, whatever the sizes
of the writes, reads and acknowledgments (checked against a plain bytes model)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.core.send_buffer import MIN_CHUNK, SendBuffer

# Write sizes around the gathering threshold, so small writes, chunks and mixes occur.
_SIZES = st.one_of(st.integers(0, 300), st.integers(MIN_CHUNK - 10, MIN_CHUNK + 3000))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["write", "read", "drop"]), _SIZES,
                          st.integers(0, 10**6), st.integers(0, 4000)), max_size=40))
def test_reads_return_the_bytes_written_at_those_offsets(ops: list[tuple[str, int, int, int]]
                                                          ) -> None:
    buf = SendBuffer()
    model = b""  # every byte ever written; buf holds model[buf.start:]
    for op, size, where, length in ops:
        if op == "write":
            data = bytes((len(model) + i) % 251 for i in range(size))
            buf.append(data)
            model += data
        elif op == "read" and buf.end > buf.start:
            start = buf.start + where % (buf.end - buf.start)
            stop = min(buf.end, start + length)
            assert buf.read(start, stop) == model[start:stop]
        elif op == "drop" and buf.end > buf.start:
            buf.drop_below(buf.start + where % (buf.end - buf.start + 1))
        assert buf.end == len(model)
        assert len(buf) == buf.end - buf.start
    if buf.end > buf.start:
        assert buf.read(buf.start, buf.end) == model[buf.start:]


def test_sequential_packet_reads_of_one_large_write_copy_nothing_else() -> None:
    data = bytes(range(256)) * 1024  # one 256 KB write
    buf = SendBuffer()
    buf.append(data)
    assert buf.read(0, len(data)) is data  # the whole chunk: the application's object
    got = [buf.read(pos, min(pos + 1400, len(data))) for pos in range(0, len(data), 1400)]
    assert b"".join(got) == data


def test_dropping_acknowledged_bytes_frees_whole_chunks_and_clear_restarts() -> None:
    buf = SendBuffer()
    for i in range(200):
        buf.append(bytes([i % 256]) * MIN_CHUNK)
    buf.drop_below(150 * MIN_CHUNK + 5)
    assert buf.read(150 * MIN_CHUNK + 5, 150 * MIN_CHUNK + 9) == bytes([150]) * 4
    assert len(buf) == 50 * MIN_CHUNK - 5
    assert buf.referenced_bytes == 50 * MIN_CHUNK  # whole chunks freed, not just hidden
    buf.clear(7)
    assert (buf.start, buf.end, len(buf)) == (7, 7, 0)
    buf.append(b"abc")
    assert buf.read(7, 10) == b"abc"

"""QuicStreamReader keeps the chunks the engine delivered; reads cut and join them."""

from __future__ import annotations

import asyncio

import pytest

from tquic.io.streams import QuicStreamReader


def _reader(*chunks: bytes, eof: bool = True) -> QuicStreamReader:
    reader = QuicStreamReader(0)
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


def test_reads_cut_across_chunk_boundaries_and_keep_the_rest() -> None:
    async def main() -> None:
        reader = _reader(b"abc", b"defg", b"", b"hij")
        assert reader.buffered == 10
        assert await reader.read(2) == b"ab"
        assert await reader.read(3) == b"cde"  # the end of one chunk, start of the next
        assert await reader.readexactly(4) == b"fghi"
        assert reader.buffered == 1
        assert await reader.read(100) == b"j"
        assert await reader.read(5) == b""
        assert reader.at_eof()

    asyncio.run(main())


def test_read_all_and_readexactly_short_at_eof() -> None:
    async def main() -> None:
        assert await _reader(b"x" * 5, b"y" * 3).read() == b"xxxxxyyy"
        reader = _reader(b"12", b"34")
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(5)
        assert info.value.partial == b"1234"

    asyncio.run(main())


def test_readuntil_finds_a_separator_split_over_chunks() -> None:
    async def main() -> None:
        reader = _reader(b"GET /a\r", b"\nrest", b"\nlast")
        assert await reader.readuntil(b"\r\n") == b"GET /a\r\n"
        assert await reader.readline() == b"rest\n"
        assert await reader.readline() == b"last"  # no separator before EOF

    asyncio.run(main())


def test_a_read_waits_for_data_fed_later() -> None:
    async def main() -> None:
        reader = _reader(eof=False)
        task = asyncio.ensure_future(reader.readexactly(6))
        await asyncio.sleep(0)
        reader.feed_data(b"abc")
        await asyncio.sleep(0)
        assert not task.done()
        reader.feed_data(memoryview(b"defgh"))
        assert await asyncio.wait_for(task, 1.0) == b"abcdef"
        assert await reader.read(10) == b"gh"

    asyncio.run(main())

"""WebTransport over HTTP/3 between tquic peers on loopback (draft-ietf-webtrans-http3)."""

from __future__ import annotations

import asyncio
import hashlib
import os

from wt_helpers import client_config, client_h3, wt_server

from tquic.h3.webtransport import WtVersion, connect_webtransport


def run(coro: object, timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def test_echo_of_bidi_uni_streams_and_datagrams_latest_draft() -> None:
    async def main() -> None:
        async with wt_server() as port:
            session = await connect_webtransport(f"https://127.0.0.1:{port}/echo", client_config(),
                                                 h3_config=client_h3())
            async with session:
                assert session.version is WtVersion.LATEST
                payloads = [os.urandom(100_000) for _ in range(3)]

                async def bidi(data: bytes) -> bytes:
                    stream = await session.create_bidirectional_stream()
                    await stream.write(data)
                    stream.close()
                    return await stream.read_all()

                echoes = await asyncio.gather(*(bidi(p) for p in payloads))
                assert [hashlib.sha256(e).digest() for e in echoes] == [
                    hashlib.sha256(p).digest() for p in payloads]
                uni = await session.create_unidirectional_stream()
                await uni.write(b"one way")
                uni.close()
                back = await session.incoming_unidirectional_streams.accept()
                assert await back.read_all() == b"one way"
                for i in range(20):
                    session.datagrams.send(b"d%d" % i)
                got = {await session.datagrams.receive() for _ in range(10)}
                assert got <= {b"d%d" % i for i in range(20)}

    run(main())

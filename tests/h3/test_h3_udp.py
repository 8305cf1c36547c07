"""HTTP/3 end to end on the asyncio endpoint over real UDP on 127.0.0.1 (connect_h3/serve_h3)."""

from __future__ import annotations

import asyncio

from tquic.core.config import QuicConfiguration
from tquic.crypto.tls.certs import generate_self_signed
from tquic.h3.aio import connect_h3, serve_h3
from tquic.h3.api import ServerTunnel
from tquic.h3.messages import Request, Response, response
from tquic.h3.settings import H3Config

CONFIG = H3Config(enable_datagrams=True, enable_connect_protocol=True)


async def handler(request: Request) -> Response:
    if request.path == "/big":
        return response(200, bytes(range(256)) * 1000, {"content-type": "application/octet-stream"})
    if request.method == "POST":
        return response(201, request.body[::-1])
    return response(404, "not found")


async def echo_tunnel(tunnel: ServerTunnel) -> None:
    tunnel.accept(headers={"capsule-protocol": "?1"})
    datagram = await tunnel.receive_datagram()
    tunnel.send_datagram(datagram[::-1])
    await tunnel.receive()  # until the client ends the tunnel or the connection


def test_h3_over_udp_requests_and_a_datagram_tunnel() -> None:
    async def main() -> None:
        cert, key = generate_self_signed()
        server = await serve_h3(
            "127.0.0.1", 0, QuicConfiguration(is_client=False, certificate=cert, private_key=key),
            handler, h3_config=CONFIG, connect_handler=echo_tunnel,
        )
        base = f"https://127.0.0.1:{server.local_address[1]}"
        try:
            client = await connect_h3("127.0.0.1", server.local_address[1],
                                      QuicConfiguration(verify_peer=False), h3_config=CONFIG,
                                      timeout=5)
            async with client:
                big, missing, posted = await asyncio.gather(
                    client.request("GET", base + "/big"),
                    client.request("GET", base + "/nothing"),
                    client.request("POST", base + "/upload", body=b"abcdef" * 5000),
                )
                assert big.status == 200 and big.body == bytes(range(256)) * 1000
                assert (missing.status, missing.body) == (404, b"not found")
                assert posted.status == 201 and posted.body == (b"abcdef" * 5000)[::-1]
                tunnel = await client.connect(base + "/.well-known/masque/udp/h/53/", "connect-udp")
                tunnel.send_datagram(b"\x00query")
                assert await asyncio.wait_for(tunnel.receive_datagram(), 5) == b"yreuq\x00"
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 20))

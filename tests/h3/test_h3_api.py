"""The asyncio request/response API (h3/api.py) over an in-memory connection pair."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from h3_shim import ShimQuic

from tquic.h3.api import ConnectRefused, H3Client, H3RequestError, H3Server, ServerTunnel
from tquic.h3.capsules import Capsule
from tquic.h3.errors import H3UsageError
from tquic.h3.messages import Request, Response, response
from tquic.h3.settings import H3Config

TUNNELS = H3Config(enable_datagrams=True, enable_connect_protocol=True)


class Loopback:
    """Drives a client and a server endpoint over the shim from the asyncio loop."""

    def __init__(
        self,
        handler: Callable[[Request], Awaitable[Response]],
        connect_handler: Callable[[ServerTunnel], Awaitable[None]] | None = None,
        config: H3Config | None = None,
        max_request_size: int = 16 << 20,
    ) -> None:
        self.cq, self.sq = ShimQuic(True, chunk=700), ShimQuic(False, chunk=700)
        self.cq.peer, self.sq.peer = self.sq, self.cq
        self._scheduled = False
        self.transmits = 0
        self.client = H3Client(self.cq, self.kick, config)
        self.server = H3Server(self.sq, self.kick, handler, config, connect_handler=connect_handler,
                               max_request_size=max_request_size)

    def kick(self) -> None:
        self.transmits += 1
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        while True:
            event = self.sq.next_event()
            if event is not None:
                self.server.quic_event_received(event)
                continue
            event = self.cq.next_event()
            if event is not None:
                self.client.quic_event_received(event)
                continue
            return


async def site(request: Request) -> Response:
    if request.path == "/hello":
        return response(200, "hello world", {"content-type": "text/plain"}, trailers={"x-done": "1"})
    if request.path == "/echo":
        trailer = request.trailers[0][1] if request.trailers else b""
        return response(200, request.body, [("x-method", request.method), ("x-trailer", trailer)])
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path.startswith("/slow"):
        await asyncio.sleep(0.01)
        return response(200, request.path)
    return response(404, "not found")


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))


def test_get_with_headers_body_and_trailers() -> None:
    async def main() -> None:
        link = Loopback(site)
        resp = await link.client.request("GET", "https://example.com/hello", {"Accept": "text/plain"})
        assert resp.status == 200
        assert resp.header("content-type") == b"text/plain"
        assert resp.body == b"hello world" and resp.text == "hello world"
        assert resp.trailers == ((b"x-done", b"1"),)

    run(main())


def test_post_body_and_request_trailers_are_echoed() -> None:
    async def main() -> None:
        link = Loopback(site)
        body = bytes(range(256)) * 2000  # 512 KB, cut into 700-byte stream chunks
        resp = await link.client.request("POST", "https://example.com/echo", body=body, trailers={"x-sum": "42"})
        assert resp.status == 200 and resp.body == body
        assert resp.header("x-method") == b"POST" and resp.header("x-trailer") == b"42"

    run(main())


def test_404_head_and_500() -> None:
    async def main() -> None:
        link = Loopback(site)
        missing = await link.client.request("GET", "https://example.com/nope")
        assert (missing.status, missing.body) == (404, b"not found")
        head = await link.client.request("HEAD", "https://example.com/hello")
        assert head.status == 200 and head.body == b"" and head.header("content-type") == b"text/plain"
        boom = await link.client.request("GET", "https://example.com/boom")
        assert boom.status == 500

    run(main())


def test_concurrent_requests_are_multiplexed() -> None:
    async def main() -> None:
        link = Loopback(site)
        paths = [f"/slow?{i}" for i in range(30)]
        replies = await asyncio.gather(*(link.client.request("GET", "https://h" + p) for p in paths))
        assert [r.body.decode() for r in replies] == paths
        assert all(r.status == 200 for r in replies)

    run(main())


def test_goaway_lets_running_requests_finish_and_refuses_new_ones() -> None:
    async def main() -> None:
        link = Loopback(site)
        running = asyncio.ensure_future(link.client.request("GET", "https://h/slow"))
        await asyncio.sleep(0.001)  # the request reaches the server
        link.server.shutdown()
        assert (await running).status == 200
        with pytest.raises(H3UsageError):
            await link.client.request("GET", "https://h/hello")

    run(main())


def test_connection_close_fails_pending_requests() -> None:
    async def main() -> None:
        link = Loopback(site)
        running = asyncio.ensure_future(link.client.request("GET", "https://h/slow"))
        await asyncio.sleep(0.001)
        link.server.close(0x100, "bye")
        with pytest.raises(H3RequestError) as info:
            await running
        assert info.value.error_code == 0x100

    run(main())


def test_extended_connect_tunnel_with_datagrams_and_capsules() -> None:
    async def on_connect(tunnel: ServerTunnel) -> None:
        assert tunnel.request.protocol == "connect-udp"
        assert tunnel.request.header("capsule-protocol") == b"?1"
        tunnel.accept(headers={"capsule-protocol": "?1"})
        payload = await tunnel.receive_datagram()
        tunnel.send_datagram(b"echo:" + payload)
        capsule = await tunnel.receive_capsule()
        assert capsule is not None
        tunnel.send_capsule(capsule.type, capsule.value[::-1])
        assert await tunnel.receive_capsule() is None  # client closed its side
        tunnel.close()

    async def main() -> None:
        link = Loopback(site, on_connect, TUNNELS)
        tunnel = await link.client.connect("https://proxy/.well-known/masque/udp/h/53/", "connect-udp")
        assert tunnel.peer_headers == ((b"capsule-protocol", b"?1"),)
        tunnel.send_datagram(b"dns query")
        assert await tunnel.receive_datagram() == b"echo:dns query"
        tunnel.send_capsule(0x00, b"abc")
        assert await tunnel.receive_capsule() == Capsule(0x00, b"cba")
        tunnel.close()
        assert await tunnel.receive_capsule() is None

    run(main())


def test_connect_refused_and_connect_without_handler() -> None:
    async def refuse(tunnel: ServerTunnel) -> None:
        tunnel.reject(403)

    async def main() -> None:
        link = Loopback(site, refuse, TUNNELS)
        with pytest.raises(ConnectRefused) as info:
            await link.client.connect("https://proxy/x", "connect-udp")
        assert info.value.response.status == 403
        plain = Loopback(site)
        with pytest.raises(ConnectRefused) as info:
            await plain.client.connect("db.example:5432")
        assert info.value.response.status == 501

    run(main())


def test_oversized_request_body_gets_413_and_reading_stops() -> None:
    async def main() -> None:
        link = Loopback(site, max_request_size=1000)
        reply = await link.client.request("POST", "https://h/echo", body=b"x" * 5000)
        assert reply.status == 413
        assert any(code == 0x100 for _, code in link.sq.stop_sendings)  # H3_NO_ERROR (§4.1)

    run(main())

"""A tiny DNS responder and query (RFC 1035 A records) for the CONNECT-UDP tests and
benchmarks: loopback only, one canned answer."""

from __future__ import annotations

import asyncio
import struct


def dns_query(name: str, query_id: int = 0x1234) -> bytes:
    """An RFC 1035 A query for ``name`` (recursion desired)."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def dns_answer_address(reply: bytes) -> str:
    """The A record of a one-answer reply built by :class:`DnsResponder`."""
    return ".".join(str(b) for b in reply[-4:])


class DnsResponder(asyncio.DatagramProtocol):
    """Answers every A query with 192.0.2.7; records who asked."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[bytes, tuple[str, int]]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queries.append((data, (str(addr[0]), int(addr[1]))))
        if len(data) < 12 or self.transport is None:
            return
        query_id = data[:2]
        question = data[12:]
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 7])
        reply = query_id + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer
        self.transport.sendto(reply, addr)


async def dns_responder() -> tuple[asyncio.DatagramTransport, DnsResponder, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(DnsResponder,
                                                           local_addr=("127.0.0.1", 0))
    return transport, proto, transport.get_extra_info("sockname")[1]

"""Shared by the FEC tests: IP packets of a given class and a sender/receiver pair."""

from __future__ import annotations

import struct

from tquic.bond.fec import FecConfig, FecSession, Outgoing


def udp4(dport: int, payload: bytes, dscp: int = 0, sport: int = 40000,
         dst: bytes = bytes([10, 0, 0, 2])) -> bytes:
    """An IPv4/UDP packet (checksums left zero: the classifier does not read them)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, dscp << 2, total, 0, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), dst)
    return ip + udp


def tcp4(dport: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 0, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return ip + tcp


def pair(config: FecConfig | None = None) -> tuple[FecSession, FecSession]:
    return FecSession(config), FecSession(config)


def fec_payloads(outs: list[Outgoing]) -> list[Outgoing]:
    return [o for o in outs if o.kind in ("source", "repair")]

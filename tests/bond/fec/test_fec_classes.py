"""Traffic classes from IP headers, and the [fec] TOML table with its errors."""

from __future__ import annotations

import struct
import tomllib

import pytest
from fec_helpers import tcp4, udp4
from hypothesis import given, settings
from hypothesis import strategies as st

from tquic.bond.fec import Action, FecConfig, FecConfigError, FecSession, parse_packet


def udp6(dport: int, dscp: int = 0, ext: bytes = b"", first_next: int = 17) -> bytes:
    udp = struct.pack("!HHHH", 50000, dport, 8, 0)
    head = struct.pack("!IHBB16s16s", (6 << 28) | (dscp << 22), len(ext) + 8, first_next, 64,
                       bytes(15) + b"\x01", bytes.fromhex("20010db8") + bytes(11) + b"\x02")
    return head + ext + udp


def test_builtin_classes_protect_calls_and_leave_bulk_tcp_alone() -> None:
    c = FecConfig().classifier()
    assert c.classify(udp4(3478, b"x")) == ("stun-turn", Action.FEC)
    assert c.classify(udp4(3481, b"x", sport=3481)) == ("stun-turn", Action.FEC)
    assert c.classify(udp4(9999, b"x", dscp=46)) == ("voice-ef", Action.FEC)
    assert c.classify(udp4(20000, b"rtp")) == ("rtp", Action.FEC)
    assert c.classify(tcp4(443, b"data")) == ("bulk-tcp", Action.OFF)
    assert c.classify(udp4(53, b"dns")) == ("default", Action.OFF)


def test_ipv6_with_extension_headers_and_fragments() -> None:
    c = FecConfig().classifier()
    assert c.classify(udp6(3479)) == ("stun-turn", Action.FEC)
    hop_by_hop = bytes([17, 0]) + bytes(6)  # next header UDP, 8 bytes long
    assert c.classify(udp6(3479, ext=hop_by_hop, first_next=0)) == ("stun-turn", Action.FEC)
    first_fragment = bytes([17, 0, 0, 0]) + bytes(4)
    assert c.classify(udp6(3479, ext=first_fragment, first_next=44))[1] is Action.FEC
    later_fragment = bytes([17, 0, 0x00, 0x08]) + bytes(4)  # offset 1: no ports in it
    assert c.classify(udp6(3479, ext=later_fragment, first_next=44))[0] == "default"
    assert c.classify(udp6(9, dscp=46))[0] == "voice-ef"


def test_configured_classes_match_in_order() -> None:
    doc = tomllib.loads('''
        [fec]
        mode = "rs"
        block = 10
        repairs = 2
        max_delay_ms = 15
        builtin_classes = false
        default = "fec"
        [[fec.class]]
        name = "lan"
        action = "off"
        destinations = ["10.0.0.0/24", "2001:db8::/32"]
        [[fec.class]]
        name = "game"
        action = "redundant"
        protocol = "udp"
        ports = ["27000-27050", 3074]
        [[fec.class]]
        name = "video"
        action = "fec+aggregate"
        dscp = ["AF41", 32]
    ''')
    cfg = FecConfig.from_toml(doc["fec"])
    assert (cfg.mode, cfg.block, cfg.repairs, cfg.max_delay) == ("rs", 10, 2, 0.015)
    c = cfg.classifier()
    assert c.classify(udp4(27010, b"", dst=bytes([10, 0, 0, 9]))) == ("lan", Action.OFF)
    assert c.classify(udp6(27010)) == ("lan", Action.OFF)
    assert c.classify(udp4(3074, b"", dst=bytes([192, 0, 2, 1]))) == ("game", Action.REDUNDANT)
    video = c.classify(udp4(5000, b"", dscp=34, dst=bytes([192, 0, 2, 1])))
    assert video == ("video", Action.FEC_AGGREGATE) and video[1].aggregate
    assert c.classify(b"not ip") == ("default", Action.FEC)


@pytest.mark.parametrize(("toml", "message"), [
    ('mode = "turbo"', "fec.mode: must be one of adaptive, xor, rs"),
    ("block = 0", "fec.block"),
    ("block = true", "fec.block: must be a int"),
    ("block = 200\nrepairs = 60", "fec.repairs"),
    ("max_overhead = -1", "fec.max_overhead: must be in [0, 4]"),
    ("max_delay_ms = 300", "fec.hold_ms: must exceed max_delay_ms (300)"),
    ('max_delay_ms = "25ms"', "fec.max_delay_ms: must be a number"),
    ("bogus = 1", "fec.bogus: unknown key"),
    ('default = "maybe"', "fec.default: must be one of off, fec, redundant, fec+aggregate"),
    ("[[fec.class]]\nname = \"x\"", "fec.class[0].action: missing"),
    ('[[fec.class]]\naction = "fec"\nports = ["9-1"]', "fec.class[0].ports[0]: must be 0-65535"),
    ('[[fec.class]]\naction = "fec"\nports = "3478"', "fec.class[0].ports: must be an array"),
    ('[[fec.class]]\naction = "fec"\ndscp = ["XX"]', "fec.class[0].dscp[0]: must be 0-63"),
    ('[[fec.class]]\naction = "fec"\nprotocol = "sctp"', "fec.class[0].protocol"),
    ('[[fec.class]]\naction = "fec"\nprotocol = "icmp"\nports = [1]', "ports need protocol"),
    ('[[fec.class]]\naction = "fec"\ndestinations = ["10.0.0.300/8"]',
     "fec.class[0].destinations[0]: must be a network"),
    ('[[fec.class]]\naction = "fec"\nport = [1]', "fec.class[0].port: unknown key"),
])
def test_config_errors_name_the_key(toml: str, message: str) -> None:
    doc = tomllib.loads("[fec]\n" + toml)
    with pytest.raises(FecConfigError) as err:
        FecConfig.from_toml(doc["fec"])
    assert message in str(err.value)


def test_disabled_or_off_class_sends_plain() -> None:
    tx = FecSession(FecConfig(enabled=False))
    assert [o.kind for o in tx.send(udp4(3478, b"x"), 0.0)] == ["plain"]
    tx = FecSession()
    assert [o.kind for o in tx.send(tcp4(80, b"x"), 0.0)] == ["plain"]
    assert tx.stats().sources == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_classify_without_error(data: bytes) -> None:
    parse_packet(data)
    assert FecConfig().classifier().classify(data)[1] in set(Action)


def test_a_class_with_its_own_ceiling_gets_its_own_stream() -> None:
    tx = FecSession()  # built-in: voice-ef may spend up to 100 %
    voice = tx.send(udp4(9999, bytes(170), dscp=46), 0.0)
    video = tx.send(udp4(20000, bytes(1000), dscp=34), 0.0)
    assert voice[0].payload[0] & 0x3F != video[0].payload[0] & 0x3F
    doc = tomllib.loads('[fec]\n[[fec.class]]\naction = "fec"\nmax_overhead = "lots"')
    with pytest.raises(FecConfigError, match=r"fec.class\[0\].max_overhead: must be a number"):
        FecConfig.from_toml(doc["fec"])


def test_the_flow_cache_keeps_classes_apart() -> None:
    c = FecConfig().classifier()
    for _ in range(3):  # the second and third lookups come from the cache
        assert c.classify(udp4(9999, b"x", dscp=46))[0] == "voice-ef"
        assert c.classify(udp4(9999, b"x"))[0] == "default"
        assert c.classify(udp4(9999, b"x", dst=bytes([10, 0, 0, 3]), sport=3478))[0] == \
            "stun-turn"
    later_fragment = bytearray(udp4(3478, b"x"))
    later_fragment[6:8] = (185).to_bytes(2, "big")  # offset 185 x 8: no UDP header here
    assert c.classify(bytes(later_fragment))[0] == "default"

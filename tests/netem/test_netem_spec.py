"""Profile strings, addresses and TOML for tquic netem: values and error messages."""

from __future__ import annotations

import math
import tomllib

import pytest

from tquic.netem.spec import (
    DEFAULT_LIMIT,
    LinkTable,
    NetemConfigError,
    parse_address,
    parse_link_option,
    parse_profile,
    table_from_toml,
)
from tquic.sim.profile import GilbertElliott, Outage


def test_full_profile_string_sets_both_directions() -> None:
    rule = parse_profile("rate=50mbit,delay=10ms,jitter=500us,loss=0.5%,corrupt=0.001,"
                         "reorder=2%:7ms,burst=1%:30%,queue=64kB,overhead=28,limit=99")
    for p in (rule.up, rule.down):
        assert p.rate_bps == 50e6
        assert p.delay == pytest.approx(0.010)
        assert p.jitter == pytest.approx(0.0005)
        assert p.loss == pytest.approx(0.005)
        assert p.corrupt == pytest.approx(0.001)
        assert p.reorder == pytest.approx(0.02) and p.reorder_delay == pytest.approx(0.007)
        assert p.bursty == GilbertElliott(0.01, 0.30)
        assert p.queue_bytes == 64_000 and p.queue_packets is None
        assert p.overhead_bytes == 28
    assert rule.up_limit == rule.down_limit == 99


def test_up_and_down_prefixes_set_one_direction() -> None:
    rule = parse_profile("rate=40mbit,up.rate=10mbit,down.delay=30ms,delay=5ms")
    assert rule.up.rate_bps == 10e6 and rule.down.rate_bps == 40e6
    assert rule.up.delay == pytest.approx(0.005) and rule.down.delay == pytest.approx(0.005)
    rule = parse_profile("delay=5ms,down.delay=30ms")  # later keys win
    assert rule.down.delay == pytest.approx(0.030) and rule.up.delay == pytest.approx(0.005)


def test_units_and_bare_numbers() -> None:
    assert parse_profile("rate=800kbit").up.rate_bps == 800e3
    assert parse_profile("rate=1.5Gbit").up.rate_bps == 1.5e9
    assert parse_profile("rate=2000000").up.rate_bps == 2e6
    assert parse_profile("delay=0.25").up.delay == 0.25  # a bare number is seconds
    assert parse_profile("delay=2s").up.delay == 2.0
    assert parse_profile("loss=0.1").up.loss == 0.1
    assert parse_profile("queue=100").up.queue_packets == 100
    assert parse_profile("queue=1MiB").up.queue_bytes == 1 << 20
    assert parse_profile("burst=2%:40%:80%:1%").up.bursty == GilbertElliott(0.02, 0.4, 0.8, 0.01)
    assert parse_profile("reorder=5%").up.reorder_delay == pytest.approx(0.005)


def test_a_rate_limited_link_gets_a_bounded_queue_by_default() -> None:
    assert parse_profile("rate=1mbit").up.queue_packets == 1000
    assert parse_profile("delay=1ms").up.queue_packets is None  # no serialiser, no queue
    assert parse_profile("delay=1ms").up_limit == DEFAULT_LIMIT


def test_outages_and_flaps() -> None:
    rule = parse_profile("outage=5s-7s,outage=30s-,outage=1s-1.5s")
    assert rule.up.outages == (Outage(1.0, 1.5), Outage(5.0, 7.0), Outage(30.0, math.inf))
    flap = parse_profile("flap=10s:1s:35s").up.outages
    assert flap == (Outage(10, 11), Outage(21, 22), Outage(32, 33))
    assert len(parse_profile("flap=20s:2s").up.outages) == math.ceil((3600 - 20) / 22)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rate=50mbps", "write 50mbit"),
        ("rate=fast", "bit rate like"),
        ("rate=0", "more than 0"),
        ("delay=10 parsecs", "time like"),
        ("loss=150%", "between 0% and 100%"),
        ("loss=lots", "percentage"),
        ("burst=1%", "P:R"),
        ("burst=1%:0", "never ends"),
        ("queue=many", "packets like 100"),
        ("queue=0", "whole number >= 1"),
        ("outage=5s", "START-END"),
        ("outage=7s-5s", "after the start"),
        ("flap=1ms:1ms", "at most 1000"),
        ("latency=10ms", "unknown profile key 'latency'"),
        ("up.lag=1", "unknown profile key 'up.lag'"),
        ("delay", "write key=value"),
        ("delay=", "write key=value"),
    ],
)
def test_bad_profiles_say_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(NetemConfigError, match=None) as info:
        parse_profile(text)
    assert says in str(info.value)
    assert "Traceback" not in str(info.value)


def test_addresses() -> None:
    assert parse_address("127.0.0.1:4433", "--listen") == ("127.0.0.1", 4433)
    assert parse_address("[::1]:4433", "--listen") == ("::1", 4433)
    assert parse_address("127.0.0.2", "src", allow_no_port=True) == ("127.0.0.2", 0)
    for bad, says in [("localhost:4433", "not an IP address"), ("127.0.0.1", "add a port"),
                      ("::1:4433", "brackets"), ("127.0.0.1:99999", "0..65535"),
                      ("[::1:4433", "missing ']'")]:
        with pytest.raises(NetemConfigError, match=r".") as info:
            parse_address(bad, "--listen")
        assert says in str(info.value)


def test_link_option_and_lookup_by_source() -> None:
    table = LinkTable()
    for option in ("127.0.0.2=delay=10ms", "127.0.0.2:5000=delay=20ms", "[::1]=delay=30ms"):
        address, rule = parse_link_option(option)
        assert address is not None
        table = table.with_rule(address, rule)
    default_addr, default_rule = parse_link_option("default=loss=1%")
    assert default_addr is None
    table = LinkTable(table.rules, default_rule)
    assert table.lookup(("127.0.0.2", 6000)).up.delay == pytest.approx(0.010)
    assert table.lookup(("127.0.0.2", 5000)).up.delay == pytest.approx(0.020)
    assert table.lookup(("::1", 1)).up.delay == pytest.approx(0.030)
    assert table.lookup(("127.0.0.9", 1)).up.loss == pytest.approx(0.01)
    with pytest.raises(NetemConfigError, match="SOURCE=PROFILE"):
        parse_link_option("127.0.0.2")


def test_toml_links_with_lists_numbers_and_directions() -> None:
    data = tomllib.loads("""
        listen = "127.0.0.1:5000"
        target = "127.0.0.1:5001"
        seed = 3
        [links.default]
        rate = "100mbit"
        [links."127.0.0.2"]
        rate = 50000000
        delay = 0.01
        outage = ["5s-7s", "20s-21s"]
        up = { rate = "10mbit" }
    """)
    table, settings = table_from_toml(data)
    assert settings == {"listen": "127.0.0.1:5000", "target": "127.0.0.1:5001", "seed": 3}
    rule = table.lookup(("127.0.0.2", 1234))
    assert rule.up.rate_bps == 10e6 and rule.down.rate_bps == 50e6
    assert rule.down.delay == pytest.approx(0.01)
    assert rule.down.outages == (Outage(5, 7), Outage(20, 21))
    assert table.lookup(("10.0.0.1", 1)).up.rate_bps == 100e6


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ('lisen = "x"', "unknown setting(s) lisen"),
        ('[links."127.0.0.2"]\ndelay = true', "give a string"),
        ('[links."127.0.0.2"]\ndelay = "soon"', "delay='soon'"),
        ('[links."host.example"]\ndelay = "1ms"', "not an IP address"),
        ('links = 3', "links: must be tables"),
    ],
)
def test_bad_toml_says_what_to_fix(doc: str, says: str) -> None:
    with pytest.raises(NetemConfigError) as info:
        table_from_toml(tomllib.loads(doc))
    assert says in str(info.value)

"""The QUIC interop runner's test cases, over the simulator, on tquic's engine.

Each case builds the interop runner's default network (10 Mbit/s, 15 ms one
way, a 25-packet drop-tail queue) or its variant, runs a tquic client against a
tquic server, and checks what the runner checks: the files arrive
SHA-256-identical, the number of handshakes and the versions, and the case's
own property.  A case returns a :class:`CaseOutcome` (the report and a list of
named checks); tests/sim/test_sim_interop.py asserts them, and
benchmarks/sim_suite.py prints them as one table.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from tquic.core.config import QuicConfiguration
from tquic.core.events import PathMigrated, PathValidated, StreamsAvailable
from tquic.crypto.keys import CipherSuite
from tquic.crypto.tls import TicketStore
from tquic.paths.network_path import NetworkPath
from tquic.sim import (
    CLIENT_ADDR,
    INTEROP_PROFILE,
    INTEROP_RATE_BPS,
    SERVER_ADDR,
    LinkProfile,
    LinkSpec,
    Outage,
    Rebind,
    Report,
    Runner,
    Scenario,
    Side,
    blackhole_outages,
    summary_table,
)
from tquic.sim.quic import QuicClientEndpoint, QuicServerEndpoint
from tquic.sim.workload import Download
from tquic.wire.errors import QuicError
from tquic.wire.packet import split_datagram
from tquic.wire.version import QUIC_V1, QUIC_V2

ALPN = ("hq-interop",)
MB = 1_000_000
V1_TYPE = {0x00: "initial", 0x10: "0rtt", 0x20: "handshake", 0x30: "retry"}
V2_TYPE = {0x10: "initial", 0x20: "0rtt", 0x30: "handshake", 0x00: "retry"}


# -- certificates: ed25519 with fixed serials, so every run has the same sizes -------------

def _cert(subject: str, issuer: str, key: ed25519.Ed25519PrivateKey,
          issuer_key: ed25519.Ed25519PrivateKey, serial: int, ca: bool) -> x509.Certificate:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    names = [x509.DNSName("localhost")] if not ca else [
        # CA certificates carry ~1 kB of names, as real intermediates carry policies
        # and URLs: a 9-certificate chain then needs several round trips' worth of
        # the 3x amplification budget.
        x509.DNSName(f"{subject}-name-{i:02d}.ca.example") for i in range(40)
    ]
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, None)


@lru_cache(maxsize=4)
def cert_chain(length: int = 1) -> tuple[bytes, bytes]:
    """(chain PEM leaf first, leaf key PEM): a root, ``length - 2`` intermediates, a leaf."""
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(length)]
    certs = []
    for i in range(length):  # i = 0 is the root (self-signed), the last one the leaf
        leaf = i == length - 1
        name = "localhost" if leaf else f"ca{i}"
        issuer = name if i == 0 else f"ca{i - 1}"
        certs.append(_cert(name, issuer, keys[i], keys[max(i - 1, 0)], 1000 + i, not leaf))
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in reversed(certs))
    key = keys[-1].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, key


def server_config(chain: int = 1, **changes: Any) -> QuicConfiguration:
    cert, key = cert_chain(chain)
    base = QuicConfiguration(
        is_client=False, alpn_protocols=ALPN, certificate=cert, private_key=key,
        token_key=bytes(32), stateless_reset_key=bytes(32),
    )
    return replace(base, **changes)


def client_config(**changes: Any) -> QuicConfiguration:
    base = QuicConfiguration(
        is_client=True, alpn_protocols=ALPN, verify_peer=False, server_name="localhost",
        token_key=bytes(32), stateless_reset_key=bytes(32),
    )
    return replace(base, **changes)


# -- a tap: what an endpoint sent and received, for the checks ------------------------------

@dataclass(frozen=True, slots=True)
class Seen:
    time: float
    size: int
    network_path: NetworkPath
    head: bytes  # the whole datagram if it starts with a long header, else 32 bytes

    @property
    def types(self) -> set[str]:
        """Packet types coalesced in the datagram ("1rtt" for a short header)."""
        if not self.head[0] & 0x80:
            return {"1rtt"}
        try:
            headers = split_datagram(self.head, 8, allow_cleared_fixed_bit=True)
        except QuicError:
            return set()
        return {h.packet_type.name.lower() for h in headers}


class Tap:
    """Wraps an endpoint and records every datagram it sends and receives."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[Seen] = []
        self.received: list[Seen] = []
        self.now = 0.0

    def receive_datagram(self, data: bytes, network_path: NetworkPath, now: float,
                         ecn: int = 0) -> None:
        self.received.append(Seen(now, len(data), network_path, _head(data)))
        self.inner.receive_datagram(data, network_path, now, ecn)

    def ecn_codepoint(self, network_path: NetworkPath) -> int:
        return int(self.inner.ecn_codepoint(network_path))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkPath]]:
        out: list[tuple[bytes, NetworkPath]] = self.inner.datagrams_to_send(now)
        self.sent.extend(Seen(now, len(d), p, _head(d)) for d, p in out)
        return out

    def next_timeout(self) -> float | None:
        t: float | None = self.inner.next_timeout()
        return t

    def handle_timeout(self, now: float) -> None:
        self.inner.handle_timeout(now)

    def next_event(self) -> object | None:
        return self.inner.next_event()  # type: ignore[no-any-return]


def _head(data: bytes) -> bytes:
    return data if data and data[0] & 0x80 else data[:32]


def long_type(head: bytes) -> str | None:
    """The long-header packet type of a datagram's first packet (None: short header)."""
    if not head[0] & 0x80:
        return None
    version = int.from_bytes(head[1:5], "big")
    table = V2_TYPE if version == QUIC_V2 else V1_TYPE
    return table[head[0] & 0x30]


# -- outcomes ------------------------------------------------------------------------------------

@dataclass(slots=True)
class CaseOutcome:
    name: str
    report: Report
    checks: list[tuple[str, bool]] = field(default_factory=list)
    wall: float = 0.0
    note: str = ""

    def check(self, what: str, ok: bool) -> None:
        self.checks.append((what, bool(ok)))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok in self.checks)

    def explain(self) -> str:
        failed = [what for what, ok in self.checks if not ok]
        return (f"{self.name}: failed {failed}\n{self.report.table()}"
                if failed else f"{self.name}: ok")


@dataclass(slots=True)
class Setup:
    """A run being put together: scenario, endpoints (tapped) and workload."""

    scenario: Scenario
    client: QuicClientEndpoint
    server: QuicServerEndpoint
    workload: Download
    client_tap: Tap = field(init=False)
    server_tap: Tap = field(init=False)
    runner: Runner = field(init=False)

    def __post_init__(self) -> None:
        self.client_tap = Tap(self.client)
        self.server_tap = Tap(self.server)
        self.runner = self.scenario.build()

    def run(self) -> Report:
        self.runner.add_flow(self.client_tap, self.server_tap, self.workload,
                             self.runner.links[:1] if len(self.runner.links) == 1
                             else self.runner.links)
        return self.runner.run()


def network(name: str, profile: LinkProfile = INTEROP_PROFILE, *, down: LinkProfile | None = None,
            seed: int = 1, max_time: float = 120.0, rebinds: tuple[Rebind, ...] = (),
            extra: tuple[LinkSpec, ...] = ()) -> Scenario:
    spec = LinkSpec(profile, profile if down is None else down, CLIENT_ADDR, SERVER_ADDR,
                    rebinds)
    return Scenario(name, (spec, *extra), seed, max_time, stall_threshold=0.2)


def setup(name: str, sizes: list[int], *, seed: int = 1, scenario: Scenario | None = None,
          cconf: QuicConfiguration | None = None, sconf: QuicConfiguration | None = None,
          retry: bool = False, tls_factory: Any = None, **wl: Any) -> Setup:
    client = QuicClientEndpoint(tls_factory=tls_factory)
    server = QuicServerEndpoint(sconf or server_config(), retry=retry, tls_factory=tls_factory)
    workload = Download(client, server, cconf or client_config(), sizes, seed=seed, **wl)
    return Setup(scenario or network(name, seed=seed), client, server, workload)


def common_checks(out: CaseOutcome, s: Setup, *, handshakes: int = 1,
                  version: int = QUIC_V1) -> None:
    wl = s.workload
    r = out.report
    out.check("completed", r.completed)
    out.check("all files SHA-256 identical",
              wl.files_ok == len(wl.sizes) * wl.connections and
              sum(x.files_bad for x in wl.results) == 0)
    out.check(f"{handshakes} handshake(s)", r.handshakes == handshakes)
    out.check(f"version 0x{version:08x}", r.versions == (version,))


def finish(out: CaseOutcome, started: float) -> CaseOutcome:
    out.wall = time.perf_counter() - started
    return out


# -- the cases -------------------------------------------------------------------------------------

def case_handshake(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("handshake", [5_000], seed=seed)
    out = CaseOutcome("handshake", s.run())
    common_checks(out, s)
    return finish(out, t)


def case_transfer(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("transfer", [2 * MB, 3 * MB, 5 * MB], seed=seed)
    out = CaseOutcome("transfer", s.run())
    common_checks(out, s)
    return finish(out, t)


def case_longrtt(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    profile = replace(INTEROP_PROFILE, delay=0.75)
    s = setup("longrtt", [1 * MB], seed=seed, scenario=network("longrtt", profile, seed=seed))
    out = CaseOutcome("longrtt", s.run())
    common_checks(out, s)
    first_reply = min((x.time for x in s.client_tap.received), default=float("inf"))
    initials = [x for x in s.client_tap.sent
                if x.time < first_reply and long_type(x.head) == "initial"]
    out.check("ClientHello retransmitted before the first server reply", len(initials) >= 2)
    return finish(out, t)


def case_chacha20(seed: int = 1) -> CaseOutcome:
    # QuicConfiguration.cipher_suites restricts both ends to ChaCha20-Poly1305.
    t = time.perf_counter()
    chacha = ("TLS_CHACHA20_POLY1305_SHA256",)
    s = setup("chacha20", [1 * MB], seed=seed, cconf=client_config(cipher_suites=chacha),
              sconf=server_config(cipher_suites=chacha))
    out = CaseOutcome("chacha20", s.run())
    common_checks(out, s)
    suites = {c.cipher_suite for c in (*s.client.connections, *s.server.connections)}
    out.check("ChaCha20-Poly1305 negotiated on both ends",
              suites == {CipherSuite.CHACHA20_POLY1305_SHA256})
    return finish(out, t)


def case_multiplexing(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("multiplexing", [32 + (i * 7919) % 1000 for i in range(1999)], seed=seed)
    out = CaseOutcome("multiplexing", s.run())
    common_checks(out, s)
    # 1999 requests against a limit of 128 streams: the client waits for MAX_STREAMS
    # and resumes on StreamsAvailable (no polling).
    out.check("client resumed on StreamsAvailable",
              any(isinstance(e, StreamsAvailable) for e in s.workload.events[Side.CLIENT]))
    return finish(out, t)


def case_retry(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("retry", [5_000], seed=seed, retry=True)
    out = CaseOutcome("retry", s.run())
    common_checks(out, s)
    out.check("server sent one Retry", s.server.retries_sent == 1)
    retried = [x for x in s.client_tap.sent if long_type(x.head) == "initial"]
    out.check("client's Initials after the Retry carry a token",
              len(retried) >= 2 and _initial_token_length(retried[-1].head) > 0)
    return finish(out, t)


def _initial_token_length(head: bytes) -> int:
    dcid_len = head[5]
    pos = 6 + dcid_len
    pos += 1 + head[pos]  # SCID
    first = head[pos]
    n = 1 << (first >> 6)  # RFC 9000 §16 varint
    value = first & 0x3F
    for b in head[pos + 1:pos + n]:
        value = (value << 8) | b
    return value


def _resumption(name: str, seed: int, early: bool) -> CaseOutcome:
    t = time.perf_counter()
    store = TicketStore()
    sconf = server_config(ticket_store=store, enable_early_data=early)
    s = setup(name, [5_000], seed=seed, sconf=sconf, connections=2, resume=True,
              early_data=early)
    out = CaseOutcome(name, s.run())
    common_checks(out, s, handshakes=2)
    results = s.workload.results
    second = results[1].handshake if len(results) > 1 else None
    out.check("second connection resumed the session",
              second is not None and second.session_resumed)
    if early:
        out.check("0-RTT accepted", second is not None and second.early_data_accepted)
        out.check("client sent 0-RTT packets",
                  any("zero_rtt" in x.types for x in s.client_tap.sent))
    return finish(out, t)


def case_resumption(seed: int = 1) -> CaseOutcome:
    return _resumption("resumption", seed, early=False)


def case_zerortt(seed: int = 1) -> CaseOutcome:
    out = _resumption("zerortt", seed, early=True)
    return out


def case_v2(seed: int = 1) -> CaseOutcome:
    # The interop runner's v2 case: the client starts in v1 and offers v2; the server
    # upgrades the connection (RFC 9368 compatible version negotiation).
    t = time.perf_counter()
    s = setup("v2", [5_000], seed=seed, cconf=client_config(versions=(QUIC_V1, QUIC_V2)),
              sconf=server_config(versions=(QUIC_V2, QUIC_V1)))
    out = CaseOutcome("v2", s.run())
    common_checks(out, s, version=QUIC_V2)
    # No extra round trip: the client's first datagram is v1, the server's first is v2.
    first_c = s.client_tap.sent[0].head if s.client_tap.sent else b"\0" * 5
    first_s = s.server_tap.sent[0].head if s.server_tap.sent else b"\0" * 5
    out.check("client starts in v1", int.from_bytes(first_c[1:5], "big") == QUIC_V1)
    out.check("server answers in v2", int.from_bytes(first_s[1:5], "big") == QUIC_V2)
    return finish(out, t)


def case_v2_direct(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("v2-direct", [5_000], seed=seed, cconf=client_config(versions=(QUIC_V2,)))
    out = CaseOutcome("v2-direct", s.run())
    common_checks(out, s, version=QUIC_V2)
    return finish(out, t)


def case_keyupdate(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("keyupdate", [3 * MB], seed=seed, key_update_after=500_000)
    out = CaseOutcome("keyupdate", s.run())
    common_checks(out, s)
    phases = (s.client.connections[0].key_phase, s.server.connections[0].key_phase)
    out.check("both sides send with key phase 1", phases == (1, 1))
    return finish(out, t)


def case_amplificationlimit(seed: int = 1) -> CaseOutcome:
    # A 9-certificate chain does not fit in 3x the client's first datagram.  The
    # client's packets after its first flight are blackholed for 0.5 s, so the
    # server must stop at the limit and wait (RFC 9000 §8.1).
    t = time.perf_counter()
    up = replace(INTEROP_PROFILE, outages=(Outage(0.002, 0.5),))
    scenario = network("amplificationlimit", up, down=INTEROP_PROFILE, seed=seed)
    s = setup("amplificationlimit", [5_000], seed=seed, scenario=scenario,
              sconf=server_config(chain=9))
    out = CaseOutcome("amplificationlimit", s.run())
    common_checks(out, s)
    validated_at = min((x.time for x in s.server_tap.received
                        if x.types & {"handshake", "1rtt"}),
                       default=float("inf"))
    received = sum(x.size for x in s.server_tap.received if x.time < validated_at)
    sent_before = [x for x in s.server_tap.sent if x.time < validated_at]
    ok = True
    for x in sent_before:
        got = sum(y.size for y in s.server_tap.received if y.time <= x.time)
        sent = sum(y.size for y in sent_before if y.time <= x.time)
        ok = ok and sent <= 3 * got
    out.check("server never sent more than 3x what it received before validation", ok)
    out.check("the chain needed more than 3x the first datagram (limit was reached)",
              sum(x.size for x in sent_before) >= 3 * 1200 - 200)
    out.note = f"received {received} B before validation"
    return finish(out, t)


def _many_handshakes(name: str, profile: LinkProfile, seed: int, count: int) -> CaseOutcome:
    t = time.perf_counter()
    scenario = network(name, profile, seed=seed, max_time=50 * 60.0)
    s = setup(name, [1_000], seed=seed, scenario=scenario, connections=count)
    out = CaseOutcome(name, s.run())
    common_checks(out, s, handshakes=count)
    return finish(out, t)


def case_handshakeloss(seed: int = 1, count: int = 50) -> CaseOutcome:
    return _many_handshakes("handshakeloss", replace(INTEROP_PROFILE, loss=0.3), seed, count)


def case_handshakecorruption(seed: int = 1, count: int = 50) -> CaseOutcome:
    return _many_handshakes("handshakecorruption", replace(INTEROP_PROFILE, corrupt=0.3), seed,
                            count)


def case_transferloss(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    profile = replace(INTEROP_PROFILE, loss=0.02)
    s = setup("transferloss", [2 * MB, 3 * MB], seed=seed,
              scenario=network("transferloss", profile, seed=seed))
    out = CaseOutcome("transferloss", s.run())
    common_checks(out, s)
    return finish(out, t)


def case_transfercorruption(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    profile = replace(INTEROP_PROFILE, corrupt=0.02)
    s = setup("transfercorruption", [2 * MB, 3 * MB], seed=seed,
              scenario=network("transfercorruption", profile, seed=seed))
    out = CaseOutcome("transfercorruption", s.run())
    common_checks(out, s)
    return finish(out, t)


def case_blackhole(seed: int = 1) -> CaseOutcome:
    t = time.perf_counter()
    profile = replace(INTEROP_PROFILE, outages=blackhole_outages(5.0, 2.0, 60.0))
    s = setup("blackhole", [10 * MB], seed=seed,
              scenario=network("blackhole", profile, seed=seed))
    out = CaseOutcome("blackhole", s.run())
    common_checks(out, s)
    out.check("transfer crossed at least one blackhole",
              out.report.links[0].down.drops("outage") > 0)
    return finish(out, t)


def _rebind(name: str, seed: int, host: str | None) -> CaseOutcome:
    t = time.perf_counter()
    rebinds = tuple(Rebind(at, host=None if host is None else f"{host}{i}")
                    for i, at in enumerate((1.0, 3.0, 5.0)))
    s = setup(name, [5 * MB], seed=seed, scenario=network(name, seed=seed, rebinds=rebinds))
    out = CaseOutcome(name, s.run())
    common_checks(out, s)
    server_events = s.workload.events[Side.SERVER]
    out.check("server validated the new path",
              any(isinstance(e, PathValidated | PathMigrated) for e in server_events))
    remotes = {x.network_path.remote for x in s.server_tap.sent}
    out.check("server sent to the rebound address", len(remotes) >= 2)
    return finish(out, t)


def case_rebind_port(seed: int = 1) -> CaseOutcome:
    return _rebind("rebind-port", seed, None)


def case_rebind_addr(seed: int = 1) -> CaseOutcome:
    return _rebind("rebind-addr", seed, "10.0.9.")


def case_connectionmigration(seed: int = 1) -> CaseOutcome:
    # The client moves to a second address on the same access network (same queue)
    # at t = 0.5 s (RFC 9000 §9.2); its first packet there must use a new DCID (§9.5).
    t = time.perf_counter()
    second = LinkSpec(INTEROP_PROFILE, INTEROP_PROFILE, ("10.0.0.2", 50001), SERVER_ADDR,
                      share_with=0)
    scenario = network("connectionmigration", seed=seed, extra=(second,))

    def migrate(wl: Download) -> None:
        wl.current.connection.migrate(wl.flow.client_path(1), wl.flow.now)

    s = setup("connectionmigration", [5 * MB], seed=seed, scenario=scenario,
              actions=((0.5, migrate),))
    out = CaseOutcome("connectionmigration", s.run())
    common_checks(out, s)
    old = [x for x in s.client_tap.sent if x.network_path.local == CLIENT_ADDR
           and not x.head[0] & 0x80]
    new = [x for x in s.client_tap.sent if x.network_path.local == ("10.0.0.2", 50001)]
    out.check("client sent on the new path", bool(new))
    if old and new:
        out.check("first packet on the new path uses a new DCID",
                  new[0].head[1:9] != old[-1].head[1:9])
    out.check("server answered on the new path",
              any(x.network_path.remote == ("10.0.0.2", 50001) for x in s.server_tap.sent))
    return finish(out, t)


def case_goodput(seed: int = 1, size: int = 10 * MB) -> CaseOutcome:
    t = time.perf_counter()
    s = setup("goodput", [size], seed=seed)
    out = CaseOutcome("goodput", s.run())
    common_checks(out, s)
    ratio = out.report.goodput_ratio or 0.0
    out.check("goodput >= 0.90 of the link rate", ratio >= 0.90)
    return finish(out, t)


def case_crosstraffic(seed: int = 1, size: int = 5 * MB) -> CaseOutcome:
    # A second tquic flow on the same bottleneck, for the whole transfer: the
    # case's own flow should get a fair share (reported) and complete.
    t = time.perf_counter()
    cross_spec = LinkSpec(INTEROP_PROFILE, INTEROP_PROFILE, ("10.0.0.3", 50002),
                          ("10.0.1.3", 443), share_with=0)
    scenario = network("crosstraffic", seed=seed, extra=(cross_spec,))
    s = setup("crosstraffic", [size], seed=seed, scenario=scenario)
    runner = s.runner
    cclient = QuicClientEndpoint()
    cserver = QuicServerEndpoint(server_config())
    cross = Download(cclient, cserver, client_config(), [4 * size], seed=seed + 1)
    runner.add_flow(s.client_tap, s.server_tap, s.workload, runner.links[:1], name="main")
    runner.add_flow(cclient, cserver, cross, runner.links[1:], name="cross", primary=False)
    report = runner.run()
    out = CaseOutcome("crosstraffic", report)
    common_checks(out, s)
    main_bps = report.flows[0].goodput_bps or 0.0
    elapsed = report.completion_time or 0.0
    cross_bps = cross.results[0].bytes_received * 8 / elapsed if elapsed else 0.0
    share = main_bps / (main_bps + cross_bps) if main_bps + cross_bps else 0.0
    out.check("the competing flow also made progress", cross_bps > 0)
    out.check("share of the bottleneck within [0.25, 0.75]", 0.25 <= share <= 0.75)
    out.note = (f"share {share:.2f}: main {main_bps / 1e6:.2f} Mbit/s, "
                f"cross {cross_bps / 1e6:.2f} Mbit/s, link {INTEROP_RATE_BPS / 1e6:.0f} Mbit/s")
    return finish(out, t)


CASES: dict[str, tuple[Callable[..., CaseOutcome], bool]] = {
    # name: (function, heavy)
    "handshake": (case_handshake, False),
    "transfer": (case_transfer, False),
    "longrtt": (case_longrtt, False),
    "chacha20": (case_chacha20, False),
    "multiplexing": (case_multiplexing, False),
    "retry": (case_retry, False),
    "resumption": (case_resumption, False),
    "zerortt": (case_zerortt, False),
    "v2": (case_v2, False),
    "v2-direct": (case_v2_direct, False),
    "keyupdate": (case_keyupdate, False),
    "amplificationlimit": (case_amplificationlimit, False),
    "handshakeloss": (case_handshakeloss, True),
    "handshakecorruption": (case_handshakecorruption, True),
    "transferloss": (case_transferloss, False),
    "transfercorruption": (case_transfercorruption, False),
    "blackhole": (case_blackhole, False),
    "rebind-port": (case_rebind_port, False),
    "rebind-addr": (case_rebind_addr, False),
    "connectionmigration": (case_connectionmigration, False),
    "goodput": (case_goodput, True),
    "crosstraffic": (case_crosstraffic, False),
}


# Cases the engine cannot pass yet (tests/sim/test_sim_interop.py marks them strict xfail).
ENGINE_MISSING: dict[str, str] = {}


def run_suite(quick: bool = False, only: list[str] | None = None,
              out: IO[str] | None = None) -> list[dict[str, Any]]:
    rows: list[tuple[str, str, Report | None, float]] = []
    results: list[dict[str, Any]] = []
    for name, (fn, heavy) in CASES.items():
        if only is not None and name not in only:
            continue
        kwargs: dict[str, Any] = {}
        if quick and heavy:
            kwargs = {"count": 10} if "count" in fn.__code__.co_varnames else {"size": 3 * MB}
        started = time.perf_counter()
        try:
            outcome = fn(**kwargs)
        except Exception as exc:
            wall = time.perf_counter() - started
            rows.append((name, "error", None, wall))
            results.append({"case": name, "result": "error", "error": repr(exc), "wall": wall})
            continue
        result = "pass" if outcome.ok else ("xfail" if name in ENGINE_MISSING else "FAIL")
        rows.append((name, result, outcome.report, outcome.wall))
        results.append({
            "case": name, "result": result, "wall": outcome.wall,
            "failed": [w for w, ok in outcome.checks if not ok], "note": outcome.note,
            "report": outcome.report.as_dict(),
        })
        if out is not None and outcome.note:
            print(f"  {name}: {outcome.note}", file=out)
    if out is not None:
        print(summary_table(rows), file=out)
        print(f"total wall {sum(r[3] for r in rows):.1f} s", file=out)
    return results

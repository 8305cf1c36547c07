"""The server's defences before state (tquic.io.admission): Retry that switches on under
load and off again, per-prefix budgets for new Initials and stateless answers, nothing
kept for an Initial that does not decrypt, half-open connections dropped in time."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest
from half_open import send_half_open

from tquic.core.config import QuicConfiguration
from tquic.io.admission import Admission, EndpointLimits, PrefixBuckets
from tquic.io.endpoint import QuicEndpoint
from tquic.io.udp import UdpSocket
from tquic.wire.version import QUIC_V1


def test_auto_retry_switches_on_at_the_handshake_threshold_and_off_after_the_hold() -> None:
    admission = Admission(EndpointLimits(retry_threshold=10, retry_hold=2.0), now=0.0)
    assert not admission.need_retry(handshaking=9, now=0.1)
    assert admission.need_retry(handshaking=10, now=0.2)
    assert admission.retry_activations == 1
    # Still on between half the threshold and the threshold (hysteresis).
    assert admission.need_retry(handshaking=6, now=5.0)
    assert admission.need_retry(handshaking=4, now=5.1)  # below half: the hold starts
    assert admission.need_retry(handshaking=4, now=6.0)
    assert not admission.need_retry(handshaking=4, now=7.2)  # quiet for 2 s: off
    assert admission.retry_activations == 1


def test_auto_retry_switches_on_when_new_initials_arrive_fast() -> None:
    admission = Admission(EndpointLimits(retry_initial_rate=100.0), now=0.0)
    now = 0.0
    switched_at = None
    for n in range(60):  # 60 Initials within 0.3 s: 200/s
        now = n * 0.005
        admission.allow_initial("192.0.2.1", now)
        if admission.need_retry(handshaking=0, now=now) and switched_at is None:
            switched_at = n
    assert switched_at is not None and switched_at <= 30
    assert admission.need_retry(handshaking=0, now=now)


def test_auto_retry_switches_on_when_initials_do_not_decrypt() -> None:
    admission = Admission(EndpointLimits(retry_junk_rate=20.0, retry_hold=1.0), now=0.0)
    for n in range(6):  # 6 undecryptable Initials in 0.1 s: 24/s
        admission.allow_initial("192.0.2.1", n * 0.02)
        admission.note_undecryptable()
    assert admission.need_retry(handshaking=0, now=0.1)
    assert admission.need_retry(handshaking=0, now=0.5)  # the window closes: rate stays high
    assert admission.need_retry(handshaking=0, now=1.0)  # quiet now: the hold starts
    assert not admission.need_retry(handshaking=0, now=2.1)


def test_never_and_always_ignore_the_load() -> None:
    never = Admission(EndpointLimits(retry="never"), now=0.0)
    always = Admission(EndpointLimits(retry="always"), now=0.0)
    assert not never.need_retry(handshaking=10_000, now=1.0)
    assert always.need_retry(handshaking=0, now=1.0)


def test_initials_are_limited_per_prefix_not_globally() -> None:
    admission = Admission(EndpointLimits(initials_per_prefix=3.0), now=0.0)
    same_net = [admission.allow_initial(f"198.51.100.{n}", 0.0) for n in range(5)]
    assert same_net == [True, True, True, False, False]  # one /24
    assert admission.allow_initial("198.51.101.1", 0.0)  # the next /24 is untouched
    assert admission.allow_initial("198.51.100.9", 1.0)  # refilled after a second
    v6 = [admission.allow_initial(f"2001:db8:1:{n:x}::1", 0.0) for n in range(4)]
    assert v6 == [True, True, True, False]  # one /48


def test_stateless_answers_have_a_prefix_and_a_global_budget() -> None:
    admission = Admission(EndpointLimits(stateless_per_prefix=2.0,
                                         stateless_packets_per_second=3.0), now=0.0)
    assert [admission.allow_stateless("203.0.113.5", 0.0) for _ in range(3)] == [
        True, True, False]
    assert admission.allow_stateless("10.1.1.1", 0.0)
    assert not admission.allow_stateless("10.2.2.2", 0.0)  # the global bucket is empty


def test_the_prefix_table_is_bounded() -> None:
    buckets = PrefixBuckets(1.0, limit=100, prefix_v4=32, prefix_v6=128)
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(buckets) == 100


@pytest.mark.parametrize(("field", "value"), [
    ("handshake_timeout", 0.0), ("retry_initial_rate", -1.0), ("retry_junk_rate", 0.0), ("initials_per_prefix", 0.0),
    ("stateless_per_prefix", 0.0), ("prefix_v4", 33), ("prefix_v6", 129),
    ("max_tracked_prefixes", 0), ("retry_hold", -1.0)])
def test_limits_are_validated_with_the_field_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        EndpointLimits(**{field: value})  # type: ignore[arg-type]


def _junk_initial() -> bytes:
    # Valid-looking: v1 Initial, 8-byte DCID, 1200 bytes -- but the payload never decrypts.
    head = b"\xc0" + QUIC_V1.to_bytes(4, "big") + b"\x08" + os.urandom(8) + b"\x00\x00"
    return head + (0x4000 | 1200).to_bytes(2, "big") + os.urandom(1200)


async def _endpoint(config: QuicConfiguration, limits: EndpointLimits) -> QuicEndpoint:
    return QuicEndpoint(config, [UdpSocket.bind("127.0.0.1", 0)], is_server=True,
                        limits=limits)


def test_an_initial_that_does_not_decrypt_leaves_no_state(
        server_config: QuicConfiguration) -> None:
    async def main() -> None:
        endpoint = await _endpoint(server_config, EndpointLimits(retry="never"))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                for _ in range(20):
                    raw.sendto(_junk_initial(), endpoint.local_address)
                await asyncio.sleep(0.3)
            assert endpoint.stats.initials_undecryptable == 20
            assert not endpoint.connections
            assert endpoint.stats.connections_accepted == 0
        finally:
            endpoint.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_new_initials_over_the_prefix_rate_are_dropped_and_counted(
        server_config: QuicConfiguration) -> None:
    async def main() -> None:
        endpoint = await _endpoint(server_config, EndpointLimits(retry="never",
                                                                 initials_per_prefix=5.0))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                for _ in range(12):
                    raw.sendto(_junk_initial(), endpoint.local_address)
                await asyncio.sleep(0.3)
            assert endpoint.stats.initials_rate_limited >= 6
            assert endpoint.stats.initials_undecryptable <= 6
        finally:
            endpoint.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_half_open_connection_is_dropped_at_the_handshake_timeout(
        server_config: QuicConfiguration, client_config: QuicConfiguration) -> None:
    async def main() -> None:
        endpoint = await _endpoint(server_config, EndpointLimits(retry="never",
                                                                 handshake_timeout=0.3))
        try:
            send_half_open(client_config, endpoint.local_address[1])
            await asyncio.sleep(0.2)
            assert endpoint.stats.connections_accepted == 1
            for _ in range(40):
                await asyncio.sleep(0.1)
                if endpoint.stats.handshakes_timed_out:
                    break
            assert endpoint.stats.handshakes_timed_out == 1
            # The slot is free again: a burst of new handshakes would be admitted.
            assert endpoint.handshakes_in_progress == 0
        finally:
            endpoint.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_an_initial_with_an_oversized_source_cid_is_dropped_without_a_retry(
        server_config: QuicConfiguration, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tquic")

    async def main() -> None:
        endpoint = await _endpoint(server_config, EndpointLimits(retry="always"))
        try:
            # RFC 9000 §17.2: a v1 CID is at most 20 bytes; a 38-byte SCID is malformed.
            head = b"\xc0" + QUIC_V1.to_bytes(4, "big") + b"\x08" + os.urandom(8)
            head += b"\x26" + os.urandom(38) + b"\x00"
            endpoint.datagram_received(head + (0x4000 | 1200).to_bytes(2, "big")
                                       + os.urandom(1200), ("127.0.0.1", 9))
            assert endpoint.stats.retries_sent == 0
            assert endpoint.stats.datagrams_dropped == 1
        finally:
            endpoint.close()

    asyncio.run(asyncio.wait_for(main(), 10))
    # Dropped as bad input, not as a bug (no traceback logged).
    assert not [r for r in caplog.records if r.exc_info]

"""The QUIC interop runner's test cases on tquic's engine, over the simulator.

Default network: 10 Mbit/s, 15 ms one way, 25-packet drop-tail queue.  Each
test asserts what the runner checks (files SHA-256-identical, handshake count,
version) and the case's property; the cases live in interop_cases.py so that
benchmarks/sim_suite.py runs the very same code.  Cases the engine cannot do
yet are strict xfails naming what is missing: they flip when it gains it.
"""

from __future__ import annotations

import interop_cases as ic


def _assert(outcome: ic.CaseOutcome) -> None:
    assert outcome.ok, outcome.explain()


def test_handshake_completes_and_delivers_the_file() -> None:
    _assert(ic.case_handshake())


def test_transfer_of_2_3_and_5_mb_on_concurrent_streams() -> None:
    _assert(ic.case_transfer())


def test_longrtt_retransmits_the_client_hello_over_a_1_5_s_rtt() -> None:
    _assert(ic.case_longrtt())


def test_chacha20_only_on_both_ends() -> None:
    _assert(ic.case_chacha20())


def test_multiplexing_1999_small_files_within_stream_limits() -> None:
    _assert(ic.case_multiplexing())


def test_retry_then_handshake_with_the_token() -> None:
    _assert(ic.case_retry())


def test_resumption_with_the_first_connection_ticket() -> None:
    _assert(ic.case_resumption())


def test_zerortt_requests_are_accepted_as_early_data() -> None:
    _assert(ic.case_zerortt())


def test_v2_server_upgrades_a_v1_client_to_v2() -> None:
    _assert(ic.case_v2())


def test_v2_when_the_client_starts_in_v2() -> None:
    _assert(ic.case_v2_direct())


def test_v2_upgrade_keeps_0rtt_of_the_original_version() -> None:
    # RFC 9369 §4: 0-RTT stays in the original version (v1) while the server switches
    # the connection to v2; the server still accepts and reads it.
    sconf = ic.server_config(ticket_store=ic.TicketStore(), enable_early_data=True,
                             versions=(ic.QUIC_V2, ic.QUIC_V1))
    s = ic.setup("v2-0rtt", [5_000], sconf=sconf,
                 cconf=ic.client_config(versions=(ic.QUIC_V1, ic.QUIC_V2)),
                 connections=2, resume=True, early_data=True)
    out = ic.CaseOutcome("v2-0rtt", s.run())
    ic.common_checks(out, s, handshakes=2, version=ic.QUIC_V2)
    second = s.workload.results[1].handshake if len(s.workload.results) > 1 else None
    out.check("0-RTT accepted", second is not None and second.early_data_accepted)
    _assert(out)


def test_v2_upgrade_after_a_retry_in_v1() -> None:
    # RFC 9369 §4: the Retry is in the original version; the server switches to v2 on
    # the client's second Initial, and its transport parameters still authenticate the
    # Retry (retry_source_connection_id).
    s = ic.setup("v2-retry", [5_000], retry=True,
                 cconf=ic.client_config(versions=(ic.QUIC_V1, ic.QUIC_V2)),
                 sconf=ic.server_config(versions=(ic.QUIC_V2, ic.QUIC_V1)))
    out = ic.CaseOutcome("v2-retry", s.run())
    ic.common_checks(out, s, version=ic.QUIC_V2)
    out.check("server sent one Retry", s.server.retries_sent == 1)
    _assert(out)


def test_keyupdate_both_sides_end_in_key_phase_1() -> None:
    _assert(ic.case_keyupdate())


def test_amplificationlimit_server_stays_under_3x_with_a_9_certificate_chain() -> None:
    _assert(ic.case_amplificationlimit())


def test_handshakeloss_50_connections_at_30_percent_loss() -> None:
    _assert(ic.case_handshakeloss())


def test_handshakecorruption_50_connections_at_30_percent_corruption() -> None:
    _assert(ic.case_handshakecorruption())


def test_transferloss_at_2_percent_loss() -> None:
    _assert(ic.case_transferloss())


def test_transfercorruption_at_2_percent_corruption() -> None:
    _assert(ic.case_transfercorruption())


def test_blackhole_5_s_on_2_s_off_during_a_transfer() -> None:
    _assert(ic.case_blackhole())


def test_rebind_port_server_follows_the_new_port() -> None:
    _assert(ic.case_rebind_port())


def test_rebind_addr_server_follows_the_new_address() -> None:
    _assert(ic.case_rebind_addr())


def test_connectionmigration_first_packet_on_new_path_uses_a_new_dcid() -> None:
    _assert(ic.case_connectionmigration())


def test_goodput_of_a_10_mb_download_is_at_least_90_percent_of_the_link() -> None:
    outcome = ic.case_goodput()
    _assert(outcome)
    assert outcome.report.goodput_ratio is not None and outcome.report.goodput_ratio >= 0.90


def test_crosstraffic_two_flows_share_the_bottleneck() -> None:
    _assert(ic.case_crosstraffic())


def test_engine_runs_are_deterministic_for_a_seed() -> None:
    first, second = ic.case_transferloss(seed=3), ic.case_transferloss(seed=3)
    assert first.report == second.report
    assert ic.case_transferloss(seed=4).report != first.report


def test_engine_loss_timer_never_rearms_for_the_instant_it_ran() -> None:
    outcome = ic.case_handshakeloss(seed=1)
    assert outcome.report.timer_spins == 0

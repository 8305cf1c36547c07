"""The simulator's QUIC glue: endpoints, workloads and the qlog hook."""

from __future__ import annotations

from pathlib import Path

import interop_cases as ic

from tquic.qlog import QlogDirectory, read_seq
from tquic.sim import INTEROP_PROFILE, single_link
from tquic.sim.quic import QuicClientEndpoint, QuicServerEndpoint
from tquic.sim.workload import Datagrams, Download, Upload


def test_qlog_hook_writes_one_trace_per_connection_end(tmp_path: Path) -> None:
    qlog = QlogDirectory(tmp_path)
    client = QuicClientEndpoint(qlog=qlog)
    server = QuicServerEndpoint(ic.server_config(), qlog=qlog)
    report = single_link("qlog", INTEROP_PROFILE).run(
        client, server, Download(client, server, ic.client_config(), [20_000])
    )
    assert report.completed and len(report.qlog_files) == 2
    for name in report.qlog_files:
        events = read_seq(Path(name).read_text())
        names = {e.get("name") for e in events}
        assert "quic:connection_started" in names and "quic:udp_datagrams_sent" in names
    client_trace = read_seq(Path(report.qlog_files[0]).read_text())
    sent = [e for e in client_trace if e.get("name") == "quic:udp_datagrams_sent"]
    assert len(sent) == report.links[0].up.offered  # every datagram, in virtual time


def test_upload_arrives_sha256_identical_and_goodput_is_measured_upstream() -> None:
    client = QuicClientEndpoint()
    server = QuicServerEndpoint(ic.server_config())
    workload = Upload(client, ic.client_config(), 1_000_000)
    report = single_link("upload", INTEROP_PROFILE).run(client, server, workload)
    assert report.completed and workload.ok and report.bytes_delivered == 1_000_000
    assert report.goodput_ratio is not None and 0.3 < report.goodput_ratio < 1.0


def test_datagrams_at_a_rate_are_counted_at_the_server() -> None:
    client = QuicClientEndpoint()
    server = QuicServerEndpoint(ic.server_config(max_datagram_frame_size=1500))
    workload = Datagrams(client, ic.client_config(max_datagram_frame_size=1500), 200,
                         size=800, interval=0.002)
    report = single_link("datagrams", INTEROP_PROFILE).run(client, server, workload)
    assert report.completed and workload.received == 200
    assert report.bytes_delivered == 200 * 800

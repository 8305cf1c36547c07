"""Prometheus ``/metrics``: a custom collector over the latest sample.

Names follow the Prometheus conventions (base units in the name: seconds,
bytes; counters end in ``_total``).  ``METRICS`` is the single list of what
is exported — the collector builds its families from it, docs/control.md
shows it as a table, and a test checks the scrape against both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tquic.control.sampler import UP_STATES, Sample

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CONTENT_TYPE", "METRICS", "MetricSpec", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LINK = ("link", "client")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # as scraped (counters with _total; a histogram's base name)
    kind: str  # gauge, counter, histogram
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("tquic_info", "gauge", ("daemon", "version"), "Always 1; the labels say what runs"),
    MetricSpec("tquic_uptime_seconds", "gauge", (), "Seconds since the daemon started"),
    MetricSpec("tquic_link_up", "gauge", LINK, "1 when the link/path is up (or a bond's standby), else 0"),
    MetricSpec("tquic_link_role", "gauge", (*LINK, "role"),
               "1 for the link's current role (primary, backup, never), 0 for the others"),
    MetricSpec("tquic_link_weight", "gauge", LINK, "Weight for the weighted scheduler"),
    MetricSpec("tquic_link_demoted", "gauge", LINK,
               "1 while the daemon keeps the link demoted (cut-off, cap, slower bond)"),
    MetricSpec("tquic_link_data_used_bytes", "gauge", LINK,
               "Bytes counted against the link's data cap in the current period"),
    MetricSpec("tquic_link_data_cap_bytes", "gauge", (*LINK, "period"),
               "The link's data cap per period (only links with a cap)"),
    MetricSpec("tquic_path_srtt_seconds", "gauge", LINK, "Smoothed RTT (RFC 9002 §5.3)"),
    MetricSpec("tquic_path_min_rtt_seconds", "gauge", LINK, "Minimum RTT (RFC 9002 §5.2)"),
    MetricSpec("tquic_path_cwnd_bytes", "gauge", LINK, "Congestion window"),
    MetricSpec("tquic_path_in_flight_bytes", "gauge", LINK, "Bytes sent and not yet acknowledged"),
    MetricSpec("tquic_path_bytes_sent_total", "counter", LINK, "UDP payload bytes sent"),
    MetricSpec("tquic_path_bytes_received_total", "counter", LINK, "UDP payload bytes received"),
    MetricSpec("tquic_path_packets_sent_total", "counter", LINK, "QUIC packets sent"),
    MetricSpec("tquic_path_lost_packets_total", "counter", LINK,
               "Packets declared lost (RFC 9002 §6)"),
    MetricSpec("tquic_path_retransmitted_packets_total", "counter", LINK,
               "Packets that carried retransmitted data"),
    MetricSpec("tquic_tunnel_packets_total", "counter", ("direction",),
               "IP packets through the tunnel; direction in = from the peer, out = to it"),
    MetricSpec("tquic_tunnel_bytes_total", "counter", ("direction",), "IP bytes through the tunnel"),
    MetricSpec("tquic_tunnel_drops_total", "counter", ("cause",), "Packets dropped, by cause"),
    MetricSpec("tquic_tunnel_reorder_held_packets_total", "counter", (),
               "Packets the reorder buffer held back until the gap before them filled"),
    MetricSpec("tquic_tunnel_reorder_late_packets_total", "counter", (),
               "Packets that arrived after their gap was given up (released at once)"),
    MetricSpec("tquic_tunnel_reorder_lost_packets_total", "counter", (),
               "Gaps the reorder buffer gave up on after its wait bound"),
    MetricSpec("tquic_tunnel_reorder_bound_seconds", "gauge", (),
               "The reorder buffer's current wait bound (0: passing through)"),
    MetricSpec("tquic_tunnel_reorder_delay_seconds", "histogram", (),
               "Delay the reorder buffer added to a held packet"),
    MetricSpec("tquic_tunnel_fec_packets_total", "counter", ("kind",),
               "FEC counters (repair sent, recovered, …) when FEC is on"),
    MetricSpec("tquic_clients", "gauge", (), "Clients connected (server daemons)"),
    MetricSpec("tquic_client_paths", "gauge", ("client",), "Open paths of the client"),
    MetricSpec("tquic_client_start_time_seconds", "gauge", ("client",),
               "When the client connected (seconds since the epoch)"),
    MetricSpec("tquic_client_bytes_sent_total", "counter", ("client",), "Bytes sent to the client"),
    MetricSpec("tquic_client_bytes_received_total", "counter", ("client",),
               "Bytes received from the client"),
    MetricSpec("tquic_endpoint_events_total", "counter", ("event",),
               "What the server's QUIC endpoint did outside its connections: one event per "
               "EndpointStats counter (datagrams_received, retries_sent, peers_blocked, …)"),
    MetricSpec("tquic_endpoint_retry_active", "gauge", (),
               "1 while new clients are answered with a Retry (RFC 9000 §8.1.2), else 0"),
    MetricSpec("tquic_endpoint_handshakes_in_progress", "gauge", (),
               "Connections whose handshake has not completed yet"),
    MetricSpec("tquic_endpoint_connections", "gauge", (),
               "Connections the endpoint holds (handshaking or established)"),
    MetricSpec("tquic_endpoint_kernel_filter_active", "gauge", (),
               "1 when flooding peers are dropped in the kernel (eBPF socket filter), else 0"),
)
_SPECS = {spec.name: spec for spec in METRICS}


class _Families:
    """Builds the prometheus_client families of one scrape from METRICS."""

    def __init__(self) -> None:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        self.families: dict[str, Any] = {}
        kinds: dict[str, Callable[..., Any]] = {
            "gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
            "histogram": HistogramMetricFamily}
        for spec in METRICS:
            self.families[spec.name] = kinds[spec.kind](spec.name, spec.help,
                                                        labels=list(spec.labels))

    def add(self, name: str, labels: tuple[str, ...], value: float) -> None:
        spec = _SPECS[name]
        if len(labels) != len(spec.labels):
            raise ValueError(f"{name} takes labels {spec.labels}")
        self.families[name].add_metric(list(labels), value)

    def __iter__(self) -> Iterator[Any]:
        return iter(family for family in self.families.values() if family.samples)


def _collect(sample: Sample) -> _Families:
    out = _Families()
    status = sample.status
    out.add("tquic_info", (status.daemon, status.version), 1)
    out.add("tquic_uptime_seconds", (), max(0.0, sample.at - status.started_at))
    for link in sample.links:
        key = (link.name, link.client)
        out.add("tquic_link_up", key, 1 if link.state in UP_STATES else 0)
        for role in ("primary", "backup", "never"):
            out.add("tquic_link_role", (*key, role), 1 if link.role == role else 0)
        out.add("tquic_link_weight", key, link.weight)
        out.add("tquic_link_demoted", key, 1 if link.demoted else 0)
        out.add("tquic_link_data_used_bytes", key, link.data_used)
        if link.data_cap is not None:
            out.add("tquic_link_data_cap_bytes", (*key, link.data_cap.period),
                    link.data_cap.limit)
        if link.srtt is not None:
            out.add("tquic_path_srtt_seconds", key, link.srtt)
        if link.min_rtt is not None:
            out.add("tquic_path_min_rtt_seconds", key, link.min_rtt)
        out.add("tquic_path_cwnd_bytes", key, link.cwnd)
        out.add("tquic_path_in_flight_bytes", key, link.bytes_in_flight)
        out.add("tquic_path_bytes_sent_total", key, link.bytes_sent)
        out.add("tquic_path_bytes_received_total", key, link.bytes_received)
        out.add("tquic_path_packets_sent_total", key, link.packets_sent)
        out.add("tquic_path_lost_packets_total", key, link.packets_lost)
        out.add("tquic_path_retransmitted_packets_total", key, link.packets_retransmitted)
    tunnel = sample.tunnel
    if tunnel is not None:
        out.add("tquic_tunnel_packets_total", ("in",), tunnel.packets_in)
        out.add("tquic_tunnel_packets_total", ("out",), tunnel.packets_out)
        out.add("tquic_tunnel_bytes_total", ("in",), tunnel.bytes_in)
        out.add("tquic_tunnel_bytes_total", ("out",), tunnel.bytes_out)
        for cause, count in sorted(tunnel.drops.items()):
            out.add("tquic_tunnel_drops_total", (cause,), count)
        out.add("tquic_tunnel_reorder_held_packets_total", (), tunnel.reorder_held)
        out.add("tquic_tunnel_reorder_late_packets_total", (), tunnel.reorder_late)
        out.add("tquic_tunnel_reorder_lost_packets_total", (), tunnel.reorder_lost)
        if tunnel.reorder_bound is not None:
            out.add("tquic_tunnel_reorder_bound_seconds", (), tunnel.reorder_bound)
        delay = tunnel.reorder_delay
        buckets = [(_le(bound), count) for bound, count in delay.buckets]
        if not buckets or buckets[-1][0] != "+Inf":
            buckets.append(("+Inf", delay.count))
        out.families["tquic_tunnel_reorder_delay_seconds"].add_metric(
            [], buckets, delay.total)
        for kind, count in sorted(tunnel.fec.items()):
            out.add("tquic_tunnel_fec_packets_total", (kind,), count)
    if sample.clients or status.daemon.endswith("server"):
        out.add("tquic_clients", (), len(sample.clients))
    for client in sample.clients:
        out.add("tquic_client_paths", (client.name,), client.paths)
        out.add("tquic_client_start_time_seconds", (client.name,), client.connected_at)
        out.add("tquic_client_bytes_sent_total", (client.name,), client.bytes_sent)
        out.add("tquic_client_bytes_received_total", (client.name,), client.bytes_received)
    endpoint = sample.endpoint
    if endpoint is not None:
        for event, count in sorted(endpoint.events.items()):
            out.add("tquic_endpoint_events_total", (event,), count)
        out.add("tquic_endpoint_retry_active", (), 1 if endpoint.retry_active else 0)
        out.add("tquic_endpoint_handshakes_in_progress", (), endpoint.handshakes_in_progress)
        out.add("tquic_endpoint_connections", (), endpoint.connections)
        out.add("tquic_endpoint_kernel_filter_active", (), 1 if endpoint.kernel_filter else 0)
    return out


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _SampleCollector:
    def __init__(self, sample: Sample) -> None:
        self._sample = sample

    def collect(self) -> Iterator[Any]:
        return iter(_collect(self._sample))


def render_metrics(sample: Sample) -> bytes:
    """The Prometheus text exposition of one sample (raises ImportError without
    prometheus-client; the API answers 503 then)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SampleCollector(sample))
    return generate_latest(registry)

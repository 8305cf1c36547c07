"""``/metrics`` scraped from a running listener and parsed with prometheus_client.parser:
every family is in the documented table (docs/control.md) with its type and labels, and
the values are the API's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from control_running import TOKEN, RunningPlane

from tquic.control.client import ControlClient
from tquic.control.metrics import METRICS

parser = pytest.importorskip("prometheus_client.parser",
                             reason="prometheus-client is not installed")

pytestmark = pytest.mark.timeout(60)
DOC = Path(__file__).resolve().parents[2] / "docs" / "control.md"


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The metrics table of docs/control.md: name -> (type, labels)."""
    text = DOC.read_text()
    table = text.split("<!-- metrics-table", 1)[1].split("<!-- end metrics-table -->", 1)[0]
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for match in re.finditer(r"^\| `([a-z_]+)` \| (\w+) \| ([^|]+) \|", table, re.M):
        labels = tuple(x.strip() for x in match.group(3).split(",") if x.strip() != "-")
        rows[match.group(1)] = (match.group(2), labels)
    return rows


def scrape(address: str, token: str | None = None) -> dict[str, Any]:
    text = ControlClient(address, token=token).get("/metrics")
    assert isinstance(text, str)
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def family_key(name: str, kind: str) -> str:
    # The parser names a counter family without its _total suffix.
    return name[:-len("_total")] if kind == "counter" else name


def test_the_documented_table_is_the_exported_list() -> None:
    assert documented() == {m.name: (m.kind, m.labels) for m in METRICS}


def test_every_scraped_family_is_documented_with_its_type_and_labels(
        tcp_plane: RunningPlane) -> None:
    families = scrape(tcp_plane.address, TOKEN)
    table = {family_key(name, kind): (name, kind, labels)
             for name, (kind, labels) in documented().items()}
    assert set(families) <= set(table)
    for key, family in families.items():
        name, kind, labels = table[key]
        assert family.type == kind, name
        for sample in family.samples:
            extra = {"le"} if kind == "histogram" else set()
            assert set(sample.labels) == set(labels) | (
                extra if sample.name.endswith("_bucket") else set()), sample
            suffixes = ("_bucket", "_sum", "_count", "_created") if kind == "histogram" else (
                "_total", "_created") if kind == "counter" else ("",)
            assert any(sample.name == key + s for s in suffixes), sample.name
    # The fake bond server has links, a tunnel with FEC and clients: everything shows.
    expected = {family_key(m.name, m.kind) for m in METRICS}
    assert set(families) == expected


def test_the_values_are_the_apis(tcp_plane: RunningPlane) -> None:
    families = scrape(tcp_plane.address, TOKEN)
    links = {link["name"]: link for link in ControlClient(
        tcp_plane.address, token=TOKEN).get("/links")["links"]}

    def value(family: str, **labels: str) -> float:
        for sample in families[family.removesuffix("_total")].samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()) and not (
                    sample.name.endswith("_created")):
                return float(sample.value)
        raise KeyError((family, labels))

    # Samples move between the two reads; the configured values do not.
    assert value("tquic_path_min_rtt_seconds", link="lte") == links["lte"]["min_rtt"]
    assert value("tquic_link_data_cap_bytes", link="lte", period="month") == 10**10
    assert value("tquic_link_role", link="sat", role="backup") == 1
    assert value("tquic_link_role", link="sat", role="primary") == 0
    assert value("tquic_path_bytes_received_total", link="dsl") > 0
    assert value("tquic_path_cwnd_bytes", link="dsl") == links["dsl"]["cwnd"]
    assert value("tquic_tunnel_drops_total", cause="no_route") == 3
    assert value("tquic_clients") == 2
    buckets = [s for s in families["tquic_tunnel_reorder_delay_seconds"].samples
               if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets] == ["0.001", "0.005", "0.02", "+Inf"]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and counts[-1] == value(
        "tquic_tunnel_reorder_delay_seconds", le="+Inf")


def test_metrics_need_the_token_too(tcp_plane: RunningPlane) -> None:
    from tquic.control.client import ControlClientError

    with pytest.raises(ControlClientError) as info:
        ControlClient(tcp_plane.address).get("/metrics")
    assert info.value.status == 401


def test_the_grafana_dashboard_asks_only_for_exported_series() -> None:
    import json

    board = json.loads((DOC.parent / "grafana-dashboard.json").read_text())
    exported = set()
    for m in METRICS:
        exported.add(m.name)
        if m.kind == "histogram":
            exported.update(m.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    asked = {name for panel in board["panels"] for target in panel["targets"]
             for name in re.findall(r"\btquic_[a-z_]+", target["expr"])}
    assert asked and asked <= exported, asked - exported
    assert {"tquic_path_bytes_received_total", "tquic_path_srtt_seconds",
            "tquic_tunnel_reorder_delay_seconds_bucket"} <= asked

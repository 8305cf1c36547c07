"""``tquic demo`` end to end: server, netem and a multipath client in one process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from cli_run import tquic

from tquic.demo.model import DemoError, DemoLink, DemoOptions, parse_link


def test_demo_json_bonds_three_links_and_survives_losing_one() -> None:
    result = tquic("demo", "--seconds", "3", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["multipath"] is True and summary["error"] is None
    assert summary["intact"] is True
    assert summary["bytes_received"] > 1_000_000
    paths = summary["paths"]
    assert [p["host"] for p in paths] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert summary["down_link"] == 0 and summary["down_at"] == 1.5
    # the failed link's path is given up; the others carried data
    assert paths[0]["state"] in ("abandoned", "failed", "closed")
    assert paths[1]["state"] == "validated" and paths[1]["bytes_received"] > 100_000
    assert any("link 0 (127.0.0.2) down" in e for e in summary["events"])


def test_demo_text_shows_live_table_and_summary() -> None:
    result = tquic("demo", "--seconds", "2", "--interval", "0.5", "--down-link", "-1",
                   "--size", "500000")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "link 0: 127.0.0.2" in out
    assert "RTT ms" in out and "summary:" in out
    assert "data intact" in out
    assert "\x1b[" not in out  # not a terminal: plain lines, no cursor movement


def test_demo_single_path_says_multipath_is_off() -> None:
    result = tquic("demo", "--seconds", "1.5", "--single-path", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["multipath"] is False
    assert "single path" in summary["multipath_note"]
    assert len(summary["paths"]) == 1 and summary["intact"] is True


def test_demo_ctrl_c_stops_cleanly() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tquic", "demo", "--seconds", "30",
                             "--interval", "0.2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        for line in proc.stdout:
            if "RTT ms" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err and "never retrieved" not in err


def test_demo_bad_options_are_one_line_errors() -> None:
    for args in (["--scheduler", "nope"], ["--link", "127.0.0.2=fast"],
                 ["--down-link", "5"], ["--seconds", "0"]):
        result = tquic("demo", *args, timeout=30)
        assert result.returncode == 2, args
        assert result.stderr.startswith("tquic demo: error:"), result.stderr
        assert "Traceback" not in result.stderr


def test_link_parsing_and_validation() -> None:
    assert parse_link("127.0.0.5=15/80/1") == DemoLink("127.0.0.5", 15e6, 0.08, 0.01)
    assert DemoLink("127.0.0.2", 40e6, 0.02).netem_profile(5.0).endswith("outage=5s-")
    with pytest.raises(DemoError, match="IPv4"):
        DemoLink("localhost", 1e6, 0.01)
    with pytest.raises(DemoError, match="own address"):
        DemoOptions(links=(DemoLink("127.0.0.2", 1e6, 0.01),) * 2)

"""benchmarks/realtime.py --quick runs end to end: server, netem and client as processes,
the download arrives intact through the FIFO, the simulator's prediction sits beside it.
One scenario, 1 MB: a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "realtime.py"


def test_quick_mode_reports_an_intact_download_beside_the_simulator(tmp_path: Path) -> None:
    out = tmp_path / "rt.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "2x16", "--size", "1000000",
         "--json", str(out)], capture_output=True, text=True, timeout=50, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert run["intact"] and run["bytes"] == 1_000_000 and run["error"] is None
    assert run["wall"] > run["transfer"] > 0 and run["exit_delay"] >= 0
    assert run["startup"] > 0 and len(run["paths"]) >= 2  # both links were used as paths
    sim = report["sim"]["2x16/deep"]
    assert sim["intact"] and sim["completion"] > 0 and sim["failure"] is None
    assert "intact" in result.stdout and "2x16       deep  sim" in result.stdout

"""``tquic bond status`` and ``tquic bond link`` against a running control listener (the
command in-process; ``--watch`` as a child process, as a user runs it)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from control_running import TOKEN, RunningPlane

from tquic.cli.main import main

pytestmark = pytest.mark.timeout(90)


def tquic(*args: str) -> subprocess.CompletedProcess[str]:
    """``tquic ARGS`` in this process (the listener runs in its own thread): exit status and
    output as a child process would give them, without a Python start-up per call."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def link_of(plane: RunningPlane, name: str) -> object:
    return next(lk for lk in plane.daemon.links() if lk.name == name)


def test_status_prints_a_table_per_link_and_the_tunnel(unix_plane: RunningPlane) -> None:
    result = tquic("bond", "status", "--control", unix_plane.address)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tquic bond client 0.1.0  up 1h 2m  links 3/3")
    assert "tunnel 10.8.0.2" in lines[1]
    table = {line.split()[0]: line for line in lines[3:6]}
    assert set(table) == {"lte", "dsl", "sat"}
    assert " backup " in table["sat"] and "/10GB/month" in table["lte"]
    assert any(line.startswith("  tunnel: in ") for line in lines)
    assert any("reorder buffer: held" in line for line in lines)


def test_status_json_is_the_apis_answers(unix_plane: RunningPlane) -> None:
    result = tquic("bond", "status", "--control", unix_plane.address, "--json")
    assert result.returncode == 0, result.stderr
    snap = json.loads(result.stdout)
    assert set(snap) == {"status", "links", "tunnel", "clients"}
    assert snap["status"]["daemon"] == "bond client"
    assert [lk["name"] for lk in snap["links"]["links"]] == ["lte", "dsl", "sat"]
    assert snap["tunnel"]["drops"]["no_route"] == 3


def test_link_changes_role_cap_and_state(unix_plane: RunningPlane) -> None:
    result = tquic("bond", "link", "lte", "--role", "backup", "--cap", "2GB/week",
                   "--control", unix_plane.address)
    assert result.returncode == 0, result.stderr
    assert "lte" in result.stdout and "backup" in result.stdout
    lte = link_of(unix_plane, "lte")
    assert lte.role == "backup" and str(lte.data_cap) == "2GB/week"  # type: ignore[attr-defined]
    result = tquic("bond", "link", "sat", "--down", "--json", "--control", unix_plane.address)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "down"
    assert link_of(unix_plane, "sat").state == "down"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("args", "message"), [
    (("nope", "--role", "backup"), "no link 'nope'; links: lte, dsl, sat"),
    (("lte", "--weight", "0"), "weight must be above 0"),
    (("lte", "--cap", "lots"), "is not an amount"),
])
def test_link_errors_are_one_line_and_change_nothing(unix_plane: RunningPlane,
                                                     args: tuple[str, ...], message: str) -> None:
    result = tquic("bond", "link", *args, "--control", unix_plane.address)
    assert result.returncode == 1
    assert result.stderr.startswith("tquic bond link: error: ")
    assert result.stderr.count("\n") == 1  # one line
    assert message in result.stderr and "Traceback" not in result.stderr
    assert link_of(unix_plane, "lte").role == "primary"  # type: ignore[attr-defined]


def test_tcp_needs_the_token_and_reads_it_from_a_file(tcp_plane: RunningPlane,
                                                      tmp_path: Path) -> None:
    result = tquic("bond", "status", "--control", tcp_plane.address)
    assert result.returncode == 1 and "--control-token" in result.stderr
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    result = tquic("bond", "status", "--control", tcp_plane.address,
                   "--control-token", f"@{token_file}")
    assert result.returncode == 0, result.stderr
    assert "client" in result.stdout and "site0" in result.stdout


def test_a_missing_daemon_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    result = tquic("bond", "status", "--control", str(tmp_path / "no.sock"))
    assert result.returncode == 1
    assert "is the daemon running with --control" in result.stderr
    assert "Traceback" not in result.stderr


def test_watch_redraws_until_stopped(unix_plane: RunningPlane) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tquic", "bond", "status", "--watch", "0.2",
                             "--control", unix_plane.address], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        heads = []
        bars: dict[str, str] = {}
        fec = []
        while len(heads) < 3:
            line = proc.stdout.readline()
            assert line, "status --watch ended early"
            if line.startswith("tquic bond client"):
                heads.append(int(line.rsplit("#", 1)[1].rstrip(")\n")))
            elif " [" in line and "Mbit/s" in line:  # a link's bar: its share of the bond
                bars[line.split()[0]] = line
            elif line.startswith("  fec: "):
                fec.append(line)
        assert heads == sorted(heads) and heads[0] < heads[-1]  # later samples each time
        assert set(bars) == {"lte", "dsl", "sat"}
        assert any("#" in bar for bar in bars.values()), bars  # traffic somewhere
        assert fec and "recovered" in fec[-1] and "repairs_sent" in fec[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def test_help_lists_the_commands() -> None:
    result = tquic("bond", "--help")
    assert result.returncode == 0
    assert "status" in result.stdout and "link" in result.stdout

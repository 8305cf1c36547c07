"""``tquic netem`` on the command line: parser, help, configuration errors, SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tquic.cli.netem_cmd import add_netem_parser, build_relay, run_netem
from tquic.netem.spec import NetemConfigError

pytestmark = pytest.mark.timeout(20)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tquic")
    add_netem_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["netem", *argv])


def test_help_documents_profiles_and_examples() -> None:
    parser = argparse.ArgumentParser(prog="tquic")
    sub = add_netem_parser(parser.add_subparsers(dest="command"))
    text = sub.format_help()
    for needle in ("--link 127.0.0.2=rate=50mbit,delay=10ms,loss=0.5%", "outage=5s-7s",
                   "burst=1%:30%", "up.rate", "links.toml", "--config"):
        assert needle in text


def test_arguments_build_the_relay() -> None:
    args = parse("--listen", "127.0.0.1:0", "--target", "127.0.0.1:9",
                 "--link", "127.0.0.2=delay=10ms", "--link", "default=loss=1%",
                 "--seed", "4", "--stats-interval", "0")
    assert args.handler is run_netem
    relay, interval = build_relay(args)
    assert relay.listen == ("127.0.0.1", 0) and relay.target == ("127.0.0.1", 9)
    assert relay.seed == 4 and interval == 0.0
    assert relay.table.lookup(("127.0.0.2", 1)).up.delay == pytest.approx(0.01)
    assert relay.table.lookup(("127.0.0.5", 1)).up.loss == pytest.approx(0.01)


def test_config_file_with_command_line_override(tmp_path: Path) -> None:
    cfg = tmp_path / "links.toml"
    cfg.write_text(textwrap.dedent("""
        listen = "127.0.0.1:7000"
        target = "127.0.0.1:7001"
        stats_interval = 2
        [links."127.0.0.2"]
        delay = "10ms"
        [links."127.0.0.3"]
        delay = "20ms"
    """))
    relay, interval = build_relay(parse("--config", str(cfg), "--link", "127.0.0.3=delay=1ms"))
    assert relay.listen == ("127.0.0.1", 7000) and interval == 2.0
    assert relay.table.lookup(("127.0.0.2", 1)).up.delay == pytest.approx(0.010)
    assert relay.table.lookup(("127.0.0.3", 1)).up.delay == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--link", "127.0.0.2=rate=10mbps"), "write 50mbit"),
        (("--listen", "localhost:4433"), "not an IP address"),
        (("--config", "/nonexistent/links.toml"), "--config /nonexistent/links.toml"),
        (("--stats-interval", "-1"), "stats_interval"),
        (("--max-clients", "0"), "--max-clients"),
    ],
)
def test_configuration_errors_exit_2_with_a_message(
        argv: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_netem(parse(*argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("tquic netem: error: ") and says in err


def test_bad_toml_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("listen = \n")
    assert run_netem(parse("--config", str(cfg))) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_sigint_stops_cleanly_with_totals() -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(3)
    code = ("import sys; from tquic.cli.netem_cmd import *; import argparse;"
            "p = argparse.ArgumentParser(); add_netem_parser(p.add_subparsers());"
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "netem", "--listen", "127.0.0.1:0", "--target",
         f"127.0.0.1:{target.getsockname()[1]}", "--link", "127.0.0.2=delay=5ms",
         "--stats-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("netem: listening on 127.0.0.1:")
        port = int(first.split()[3].rstrip(",").rsplit(":", 1)[1])
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.2", 0))
        c.sendto(b"hello", ("127.0.0.1", port))
        assert target.recvfrom(100)[0] == b"hello"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=5)
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        target.close()
    assert proc.returncode == 0, err
    assert "netem total 127.0.0.2:" in out and "up: 1/1 pkt 5 B" in out
    assert "Traceback" not in err


def test_epoch_from_the_command_line_or_the_config_file(tmp_path: Path) -> None:
    relay, _ = build_relay(parse("--epoch", "first"))
    assert relay.epoch == "first"
    assert build_relay(parse())[0].epoch == "start"
    cfg = tmp_path / "links.toml"
    cfg.write_text('epoch = "first"\n')
    assert build_relay(parse("--config", str(cfg)))[0].epoch == "first"
    cfg.write_text('epoch = "soon"\n')
    with pytest.raises(NetemConfigError, match="epoch: must be one of start, first"):
        build_relay(parse("--config", str(cfg)))

"""``tquic server --workers N``: several processes on one port, every client served, and
flags that say what is wrong when they are."""

from __future__ import annotations

import json
from pathlib import Path

from cli_run import running_server, server_argv, tquic


def test_two_workers_serve_every_client(cert_dir: Path) -> None:
    with running_server(server_argv(cert_dir, "--workers", "2", "--alpn", "hq-interop")) as port:
        urls = [f"https://127.0.0.1:{port}/{size}" for size in (1000, 70000)]
        for _ in range(4):  # new source ports: spread over both workers by the kernel
            result = tquic("client", *urls, "--alpn", "hq-interop", "--insecure", "--json",
                           timeout=30)
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert [r["bytes"] for r in report["results"]] == [1000, 70000]


def test_bad_scale_flags_fail_with_one_line(cert_dir: Path) -> None:
    for flags, message in ((["--workers", "0"], "must be at least 1"),
                           (["--workers", "40"], "at most 32 workers"),
                           (["--server-id", "zz"], "hex digits"),
                           (["--lb-key", "00"], "key: must be 16 octets"),
                           (["--handshake-timeout", "-1"], "must be positive"),
                           (["--quiet-after", "-1"], "must not be negative"),
                           (["--retries-per-peer", "0"], "must be at least 1"),
                           (["--kernel-initial-rate", "-5"], "must not be negative")):
        result = tquic("server", "--listen", "127.0.0.1:0", "--cert",
                       str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"), *flags,
                       timeout=20)
        assert result.returncode != 0
        assert message in result.stderr, (flags, result.stderr)
        assert "Traceback" not in result.stderr


def test_servers_sharing_a_token_key_accept_each_others_tokens(tmp_path: Path) -> None:
    from tquic.cli.server_scale import farm_keys
    from tquic.core.tokens import TokenManager

    secret = tmp_path / "farm.key"
    secret.write_text("ab" * 32)
    from tquic.cli.tickets import load_ticket_key

    one, two = farm_keys(load_ticket_key(str(secret))), farm_keys(load_ticket_key(str(secret)))
    assert one == two and one["token_key"] != one["stateless_reset_key"]
    token = TokenManager(one["token_key"]).create_new_token(("192.0.2.1", 5), 0.0)
    assert TokenManager(two["token_key"]).validate_new_token(token, ("192.0.2.1", 9), 1.0)


def test_load_flags_set_the_endpoint_limits() -> None:
    import argparse

    from tquic.cli import server_scale

    parser = argparse.ArgumentParser()
    server_scale.add_arguments(parser)
    limits = server_scale.limits(parser.parse_args(["--retries-per-peer", "4",
                                                    "--quiet-after", "0"]))
    assert (limits.retries_unanswered_per_peer, limits.quiet_after) == (4, 0.0)
    defaults = server_scale.limits(parser.parse_args([]))
    assert (defaults.retries_unanswered_per_peer, defaults.quiet_after) == (16, 15.0)
    peers = server_scale.limits(parser.parse_args(["--junk-per-peer", "5", "--peer-block",
                                                   "0.5", "--no-kernel-filter",
                                                   "--kernel-initial-rate", "0"]))
    assert (peers.junk_per_peer, peers.peer_block_seconds, peers.kernel_filter,
            peers.kernel_initials_per_second) == (5.0, 0.5, False, 0.0)
    assert (defaults.junk_per_peer, defaults.peer_block_seconds, defaults.kernel_filter) == (
        20.0, 2.0, True)


def test_the_listening_line_says_whether_the_kernel_drops_flooding_peers(
        cert_dir: Path) -> None:
    import subprocess

    from tquic.io.peer_filter import kernel_peer_filter

    probe = kernel_peer_filter(8)
    expected = ("flooding peers dropped in the kernel" if probe is not None
                else "kernel peer filter off: needs root or CAP_BPF")
    if probe is not None:
        probe.close()
    for flags, phrase in (([], expected), (["--no-kernel-filter"], "kernel peer filter off")):
        proc = subprocess.Popen(server_argv(cert_dir, *flags), stderr=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
        finally:
            proc.terminate()
            proc.wait(10)
        assert "listening on" in line and line.rstrip().endswith(phrase), line

"""``tquic server --webtransport-echo PATH`` and ``tquic client --webtransport URL``, run as a
user would: the echo checks out, and the errors say what went wrong."""

from __future__ import annotations

import json
from pathlib import Path

from cli_run import running_server, server_argv, tquic


def test_client_checks_every_echo_and_a_wrong_path_gets_404(cert_dir: Path) -> None:
    with running_server(server_argv(cert_dir, "--webtransport-echo", "/echo", "-q")) as port:
        result = tquic("client", "--insecure", "--webtransport", f"https://127.0.0.1:{port}/echo",
                       "--wt-datagrams", "20", "--wt-streams", "4", "--wt-stream-size", "50000",
                       "--json", timeout=30)
        wrong = tquic("client", "--insecure", "--webtransport", f"https://127.0.0.1:{port}/nope",
                      timeout=30)
    assert wrong.returncode != 0 and "404" in wrong.stderr
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["draft"] == "webtransport-h3"
    assert report["streams"]["echoed_ok"] == 4 and report["unidirectional_ok"]
    assert report["datagrams"]["echoed"] > 0 and report["datagrams"]["wrong"] == 0


def test_client_explains_a_server_without_webtransport(cert_dir: Path) -> None:
    with running_server(server_argv(cert_dir, "-q")) as port:
        result = tquic("client", "--insecure", "--webtransport", f"https://127.0.0.1:{port}/echo",
                       "--timeout", "5", timeout=30)
    assert result.returncode != 0
    assert "does not offer WebTransport" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_echo_path_is_an_error(cert_dir: Path) -> None:
    bad = tquic("server", "--cert", str(cert_dir / "cert.pem"), "--key", str(cert_dir / "key.pem"),
                "--listen", "127.0.0.1:0", "--webtransport-echo", "echo", timeout=30)
    assert bad.returncode != 0 and "must start with '/'" in bad.stderr

"""`tquic client --no-ecn` turns ECN marking off (RFC 9000 §13.4); it is on by default."""

from __future__ import annotations

from tquic.cli import client
from tquic.cli.main import build_parser


def test_client_marks_ecn_by_default_and_no_ecn_turns_it_off() -> None:
    parser = build_parser()
    on = client._config(parser.parse_args(["client", "--insecure", "https://127.0.0.1:4433/"]))
    off = client._config(parser.parse_args(["client", "--insecure", "--no-ecn",
                                            "https://127.0.0.1:4433/"]))
    assert on.ecn is True and off.ecn is False


def test_server_accepts_no_ecn() -> None:
    args = build_parser().parse_args(["server", "--cert", "c.pem", "--key", "k.pem", "--no-ecn"])
    assert args.no_ecn is True

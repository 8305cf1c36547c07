"""``tquic certs DIR``: a self-signed certificate and key for local testing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tquic.cli.common import fail


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "certs", help="write a self-signed certificate and key (cert.pem, key.pem)",
        description="Write DIR/cert.pem and DIR/key.pem: a self-signed certificate for "
                    "localhost, 127.0.0.1 and ::1 (or --hostname ...), for testing.")
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--hostname", action="append", default=None,
                        help="a name or address the certificate covers (repeatable)")
    parser.add_argument("--rsa", action="store_true", help="an RSA key instead of ECDSA P-256")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tquic.crypto.tls.certs import generate_self_signed

    directory = Path(args.directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail("tquic certs", f"cannot create {directory}: {exc.strerror}")
    hostnames = tuple(args.hostname or ("localhost", "127.0.0.1", "::1"))
    cert, key = generate_self_signed(hostnames, key_type="rsa" if args.rsa else "ec")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    os.chmod(key_path, 0o600)
    print(f"wrote {cert_path} and {key_path} ({', '.join(hostnames)})")
    return 0

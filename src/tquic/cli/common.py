"""Helpers shared by the ``tquic`` subcommands: addresses, errors, certificates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tquic.io.protocol import ConnectionClosedError


class CliError(Exception):
    """A failure the command reports in one line (no traceback) with exit status 1."""


def parse_listen(value: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[v6]:PORT``, ``:PORT`` or ``PORT`` → (host, port); "::" when no host."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    host = host.strip("[]") or "::"
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad address {value!r}: expected ADDR:PORT") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"bad port {port}: must be within 0..65535")
    return host, port


def read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise CliError(f"cannot read {what} file {path}: {exc.strerror}") from None


def credentials_error(reason: str, field_name: str, cert: str, key: str) -> CliError:
    """A server's certificate/key check (``tquic.io.api.check_server_credentials``) as
    one line naming the flag and the file at fault."""
    flag, path = ("--cert", cert) if field_name == "certificate" else ("--key", key)
    return CliError(f"{flag} {path}: {reason}")


def describe_close(exc: ConnectionClosedError) -> str:
    """A human sentence for a CONNECTION_CLOSE (TLS alerts named, RFC 9001 §4.8)."""
    code = exc.error_code
    if 0x100 <= code <= 0x1FF:
        name = _alert_name(code - 0x100)
        hint = ""
        if name in ("bad_certificate", "unknown_ca", "certificate_unknown",
                    "certificate_expired", "unsupported_certificate"):
            hint = " (use --ca FILE to trust the server's certificate, or --insecure)"
        who = "server" if exc.by_peer else "certificate check"
        return f"TLS handshake failed: {name} from {who}{hint}"
    if exc.reason:
        return f"connection closed (error 0x{code:x}): {exc.reason}"
    return f"connection closed (error 0x{code:x})"


def _alert_name(value: int) -> str:
    try:
        from tquic.crypto.tls.alerts import AlertDescription

        return AlertDescription(value).name
    except (ImportError, ValueError):
        return f"alert {value}"


def fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 1

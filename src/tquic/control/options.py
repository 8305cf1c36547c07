"""The command-line side of a daemon's control plane: ``--control`` and
``--control-token``, the settings list built from the parsed options, and the
one call that starts the listener from them (so each daemon adds a few lines)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from tquic.control.model import DaemonView, Setting, Steering
from tquic.control.server import ControlPlane, start_control
from tquic.control.values import load_token

__all__ = ["add_control_arguments", "settings_from_args", "start_from_args"]

_SECRET = ("token", "password", "secret")


def add_control_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    where = f" (default {default})" if default else " (default: none)"
    parser.add_argument("--control", default=default, metavar="PATH|ADDR:PORT",
                        help="serve the control API, /metrics and the live dashboard on this "
                             "Unix socket (mode 0600) or TCP address (needs --control-token)"
                             + where + "; docs/control.md")
    parser.add_argument("--control-token", metavar="TOKEN|@FILE",
                        help="bearer token for a TCP --control (16+ characters; @FILE reads "
                             "it from a file, keeping it out of ps)")
    parser.add_argument("--control-interval", type=float, default=1.0, metavar="SECONDS",
                        help="how often the control plane samples the daemon (default 1)")


def settings_from_args(args: argparse.Namespace, runtime: Iterable[str] = (),
                       descriptions: dict[str, str] | None = None) -> list[Setting]:
    """Every option with its current value (secrets shown only as set/unset), for
    ``GET /config``; ``runtime`` names those changeable without a restart."""
    live = set(runtime)
    notes = descriptions or {}
    out = []
    for name, value in sorted(vars(args).items()):
        if callable(value) or name in ("command", "handler") or name.endswith("_command"):
            continue
        if any(word in name for word in _SECRET):
            value = None if value is None else "(set)"
        elif isinstance(value, tuple | list):
            value = [v if isinstance(v, str | int | float | bool) or v is None else str(v)
                     for v in value]
        elif not isinstance(value, str | int | float | bool) and value is not None:
            value = str(value)
        out.append(Setting(name.replace("_", "-"), value, notes.get(name, ""), name in live))
    return out


async def start_from_args(args: argparse.Namespace, view: DaemonView,
                          steering: Steering | None, program: str) -> ControlPlane | None:
    """Start the listener if ``--control`` was given.  Raises ValueError or OSError with a
    message for one line of the daemon's error output."""
    if not getattr(args, "control", None):
        if getattr(args, "control_token", None):
            raise ValueError("--control-token without --control: give the address to serve on")
        return None
    token = load_token(args.control_token) if args.control_token else None
    plane = await start_control(view, steering, args.control, token=token,
                                interval=getattr(args, "control_interval", 1.0))
    where = plane.address
    hint = f"; dashboard {plane.url}" if plane.target and plane.target.path is None else ""
    print(f"{program}: control API on {where}{hint}", file=sys.stderr, flush=True)
    return plane

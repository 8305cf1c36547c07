"""The command-line side of a daemon's control plane: ``--control`` and
``--control-token``, the settings list built from the parsed options, and the
one call that starts the listener from them (so each daemon adds a few lines)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterable

from tquic.control.model import DaemonView, Setting, Steering
from tquic.control.server import ControlPlane, start_control
from tquic.control.values import load_token

__all__ = ["ControlStartError", "add_control_arguments", "control_for", "settings_from_args",
           "start_from_args"]

_SECRET = ("token", "password", "secret")
OFF = ("none", "off")
logger = logging.getLogger("tquic.control")


class ControlStartError(OSError):
    """``--control`` could not be served (an OSError, so daemons that stop on a socket
    error stop on this one too); the message is one line for the user."""


def add_control_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``default``: the socket served when --control is not given (a failure to serve it is
    a warning, not an error); ``--control none`` turns it off."""
    where = (f" (default {default}; 'none': no control API)" if default else " (default: none)")
    parser.add_argument("--control", default=None, metavar="PATH|ADDR:PORT",
                        help="serve the control API, /metrics and the live dashboard on this "
                             "Unix socket (mode 0600) or TCP address (needs --control-token)"
                             + where + "; docs/control.md")
    parser.add_argument("--control-token", metavar="TOKEN|@FILE",
                        help="bearer token for a TCP --control (16+ characters; @FILE reads "
                             "it from a file, keeping it out of ps)")
    parser.add_argument("--control-interval", type=float, default=None, metavar="SECONDS",
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
                          steering: Steering | None, program: str,
                          default: str | None = None) -> ControlPlane | None:
    """Start the listener if ``--control`` was given (or on ``default``).  Raises ValueError
    or OSError with a message for one line of the daemon's error output; serving
    ``default`` only warns when it fails (another daemon may hold it)."""
    target = getattr(args, "control", None)
    if target is not None and target.lower() in OFF:
        return None
    if not target:
        if getattr(args, "control_token", None) and default is None:
            raise ValueError("--control-token without --control: give the address to serve on")
        if default is None:
            return None
        try:
            return await _start(args, view, steering, program, default)
        except (ValueError, OSError) as exc:
            logger.warning("%s: control API not started on %s: %s (give --control PATH or "
                           "--control none)", program, default, exc)
            return None
    return await _start(args, view, steering, program, target)


async def _start(args: argparse.Namespace, view: DaemonView, steering: Steering | None,
                 program: str, target: str) -> ControlPlane:
    token = load_token(args.control_token) if args.control_token else None
    plane = await start_control(view, steering, target, token=token,
                                interval=_interval(args))
    where = plane.address
    hint = f"; dashboard {plane.url}" if plane.target and plane.target.path is None else ""
    print(f"{program}: control API on {where}{hint}", file=sys.stderr, flush=True)
    return plane


@contextlib.asynccontextmanager
async def control_for(args: argparse.Namespace, view: DaemonView, steering: Steering | None,
                      program: str, default: str | None = None
                      ) -> AsyncIterator[ControlPlane | None]:
    """``async with control_for(args, view, view, "tquic bond client", DEFAULT):`` serves the
    control plane while the block runs; a bad --control raises ControlStartError."""
    try:
        plane = await start_from_args(args, view, steering, program, default)
    except (ValueError, OSError) as exc:
        raise ControlStartError(f"--control: {exc}") from None
    try:
        yield plane
    finally:
        if plane is not None:
            await plane.close()


def _interval(args: argparse.Namespace) -> float:
    value = getattr(args, "control_interval", None)
    return 1.0 if value is None else float(value)

"""Validating what a write asks for: roles, weights, data caps, JSON bodies.

Every check raises ``Invalid`` (HTTP 422: the right type, a wrong value) or
``BadBody`` (HTTP 400: not the shape the endpoint takes) with a message that
names the key and says what to write, so the API, the CLI and a config file
give the same answer for the same mistake.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tquic.control.model import ROLES, ControlError, DataCap, Invalid, LinkChange

__all__ = ["PERIODS", "BadBody", "load_token", "parse_body", "parse_cap", "parse_link_change",
           "parse_role", "parse_weight"]

PERIODS = ("day", "week", "month")
MAX_WEIGHT = 1000.0
# Decimal units as ISPs count them, binary ones for those who prefer them.
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6,
          "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_CAP = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*(?:/\s*([a-z]+)\s*)?$")
_NO_CAP = ("none", "unlimited", "off")


class BadBody(ControlError):
    """The request body is not the JSON object the endpoint takes."""

    status = 400


def parse_role(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {value!r}")
    return value.lower()


def parse_weight(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"weight must be a number, not {value!r}")
    weight = float(value)
    if not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT:
        raise Invalid(f"weight must be above 0 and at most {MAX_WEIGHT:g}, not {value!r}")
    return weight


def parse_cap(value: object) -> DataCap | None:
    """``"10GB/month"``, ``"500MB/day"``, ``"2GiB/week"``, ``"1.5TB"`` (per month);
    ``None``, ``"none"`` or ``"unlimited"``: no cap."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"cap must be a string such as '10GB/month', not {value!r}")
    if value.strip().lower() in _NO_CAP:
        return None
    match = _CAP.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise Invalid(f"cap {value!r} is not an amount such as 10GB/month, 500MB/day or "
                      f"'unlimited' (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    period = match.group(3) or "month"
    if period not in PERIODS:
        raise Invalid(f"cap period {period!r} must be one of {', '.join(PERIODS)}")
    limit = int(float(match.group(1)) * _UNITS[unit])
    if limit <= 0:
        raise Invalid(f"cap {value!r} must be above zero (use 'unlimited' for no cap)")
    return DataCap(limit, period)


def parse_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is an empty object)."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadBody(f"the body must be a JSON object, not {type(value).__name__}")
    return value


def _only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Invalid(f"unknown key {unknown[0]!r}: this endpoint takes "
                      f"{', '.join(allowed) or 'no keys'}")


def parse_link_change(body: Mapping[str, Any]) -> LinkChange:
    """``{"role": "backup", "weight": 2, "cap": "10GB/month" | null}`` (any subset, not none)."""
    _only(body, ("role", "weight", "cap"))
    role = parse_role(body["role"]) if "role" in body else None
    weight = parse_weight(body["weight"]) if "weight" in body else None
    cap: DataCap | None = None
    clear_cap = False
    if "cap" in body:
        cap = parse_cap(body["cap"])
        clear_cap = cap is None
    change = LinkChange(role=role, weight=weight, cap=cap, clear_cap=clear_cap)
    if change.is_empty():
        raise BadBody("nothing to change: give at least one of role, weight, cap")
    return change


def parse_optional_link(body: Mapping[str, Any]) -> str | None:
    """``{}`` or ``{"link": NAME}`` (for re-open)."""
    _only(body, ("link",))
    name = body.get("link")
    if name is not None and not isinstance(name, str):
        raise Invalid(f"link must be a link name (a string), not {name!r}")
    return name


def parse_empty(body: Mapping[str, Any]) -> None:
    _only(body, ())


def load_token(value: str) -> str:
    """``--control-token``: the token itself, or ``@FILE`` to read it from a file (so it
    stays out of ``ps`` and shell history).  At least 16 characters."""
    token = value
    if value.startswith("@"):
        try:
            token = Path(value[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the control token from {value[1:]}: "
                             f"{exc.strerror or exc}") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ValueError("the control token must be at least 16 characters, without spaces "
                         "(e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe())')")
    return token

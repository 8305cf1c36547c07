"""The daemons' control plane: JSON API, Prometheus metrics, live dashboard.

A daemon exposes itself through two small Protocols (``model.DaemonView`` for
reads, ``model.Steering`` for writes) and starts the listener with
``server.start_control``; ``client.ControlClient`` and ``tquic bond status``
talk to it.  docs/control.md documents the endpoints and the metrics.
"""

from __future__ import annotations

from tquic.control.model import (
    ClientInfo,
    Conflict,
    ControlError,
    DaemonView,
    DataCap,
    EndpointInfo,
    Histogram,
    Invalid,
    LinkChange,
    LinkInfo,
    NotFound,
    Setting,
    StatusInfo,
    Steering,
    TunnelInfo,
)
from tquic.control.server import ControlPlane, parse_control_target, start_control

__all__ = [
    "ClientInfo",
    "Conflict",
    "ControlError",
    "ControlPlane",
    "DaemonView",
    "DataCap",
    "EndpointInfo",
    "Histogram",
    "Invalid",
    "LinkChange",
    "LinkInfo",
    "NotFound",
    "Setting",
    "StatusInfo",
    "Steering",
    "TunnelInfo",
    "parse_control_target",
    "start_control",
]

"""Congestion controllers, registered by name (DESIGN.md "cc/").

Importing this package registers the built-ins: ``newreno`` (RFC 9002 §7) and
``cubic`` (RFC 9438 with HyStart++, RFC 9406).
"""

from __future__ import annotations

from tquic.cc.base import (
    AckedPacket,
    CongestionController,
    LostPacket,
    RttSample,
    SentInfo,
    available_controllers,
    create_controller,
    register_controller,
)
from tquic.cc.cubic import Cubic, create_cubic
from tquic.cc.newreno import NewReno, create_newreno
from tquic.cc.pacer import Pacer

register_controller("newreno", create_newreno)
register_controller("cubic", create_cubic)
import tquic.cc.coupled_registry  # noqa: E402, F401  (registers lia, olia, balia)
from tquic.cc import model_based  # noqa: E402, F401  (registers bbr1/2/3, bbr, copa, westwood, prague)

__all__ = [
    "AckedPacket",
    "CongestionController",
    "Cubic",
    "LostPacket",
    "NewReno",
    "Pacer",
    "RttSample",
    "SentInfo",
    "available_controllers",
    "create_controller",
    "register_controller",
]

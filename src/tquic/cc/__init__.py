"""Congestion controllers, registered by name (DESIGN.md "cc/").

The built-ins are the literal table in ``tquic.cc.registry`` (newreno, cubic,
lia/olia/balia, bbr1/2/3, copa, westwood, prague); ``register_controller`` adds
your own (docs/congestion.md).  Importing this package registers nothing.
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
    "create_cubic",
    "create_newreno",
    "register_controller",
]

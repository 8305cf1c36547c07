"""Registers the model-based and ECN controllers by name (DESIGN.md "cc/").

``bbr1`` (draft-cardwell-iccrg-bbr-congestion-control-00), ``bbr2`` and
``bbr3`` (draft-ietf-ccwg-bbr; ``bbr`` is an alias of ``bbr3``), ``copa``
(NSDI 2018), ``westwood`` (Westwood+) and ``prague`` (L4S, RFC 9331).
"""

from __future__ import annotations

from tquic.cc.base import register_controller
from tquic.cc.bbr1 import Bbr1, create_bbr1
from tquic.cc.bbr3 import BBR2_PARAMS, BBR3_PARAMS, Bbr3, BbrParams, create_bbr2, create_bbr3
from tquic.cc.copa import Copa, create_copa
from tquic.cc.prague import Prague, create_prague
from tquic.cc.westwood import WestwoodPlus, create_westwood

register_controller("bbr1", create_bbr1)
register_controller("bbr2", create_bbr2)
register_controller("bbr3", create_bbr3)
register_controller("bbr", create_bbr3)
register_controller("copa", create_copa)
register_controller("westwood", create_westwood)
register_controller("prague", create_prague)

__all__ = [
    "BBR2_PARAMS",
    "BBR3_PARAMS",
    "Bbr1",
    "Bbr3",
    "BbrParams",
    "Copa",
    "Prague",
    "WestwoodPlus",
]

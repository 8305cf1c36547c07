"""The model-based and ECN controllers in one import (DESIGN.md "cc/"); their
names are in the built-in table of ``tquic.cc.registry``.

``bbr1`` (draft-cardwell-iccrg-bbr-congestion-control-00), ``bbr2`` and
``bbr3`` (draft-ietf-ccwg-bbr; ``bbr`` is an alias of ``bbr3``), ``copa``
(NSDI 2018), ``westwood`` (Westwood+) and ``prague`` (L4S, RFC 9331).
"""

from __future__ import annotations

from tquic.cc.bbr1 import Bbr1, create_bbr1
from tquic.cc.bbr3 import BBR2_PARAMS, BBR3_PARAMS, Bbr3, BbrParams, create_bbr2, create_bbr3
from tquic.cc.copa import Copa, create_copa
from tquic.cc.prague import Prague, create_prague
from tquic.cc.westwood import WestwoodPlus, create_westwood

__all__ = [
    "BBR2_PARAMS",
    "BBR3_PARAMS",
    "Bbr1",
    "Bbr3",
    "BbrParams",
    "Copa",
    "Prague",
    "WestwoodPlus",
    "create_bbr1",
    "create_bbr2",
    "create_bbr3",
    "create_copa",
    "create_prague",
    "create_westwood",
]

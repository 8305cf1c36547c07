"""Forward error correction for the bond's tunnel datagrams (docs/fec.md).

A sans-I/O library: :class:`FecSession` classifies each packet (classify.py),
frames it on the FEC context (wire.py), adds repairs (encoder.py, codes.py) as
many as the policy says (policy.py, loss.py), rebuilds lost packets on the
other side (decoder.py) and counts what it did (stats.py).  Configuration is
the bond TOML's ``[fec]`` table (config.py).
"""

from tquic.bond.fec.classify import Action, Classifier, ClassRule, PacketInfo, parse_packet
from tquic.bond.fec.codes import Code, CodeError
from tquic.bond.fec.config import BUILTIN_CLASSES, FecConfig, FecConfigError
from tquic.bond.fec.decoder import StreamDecoder
from tquic.bond.fec.encoder import FecEncoder, Outgoing
from tquic.bond.fec.loss import LossEstimate, PathLoss
from tquic.bond.fec.policy import AdaptiveRepair, BlockPlan, FixedRepair, RepairPolicy
from tquic.bond.fec.session import FEC_STREAM, REDUNDANT_STREAM, FecSession, policy_for
from tquic.bond.fec.stats import FecStats
from tquic.bond.fec.wire import FecWireError

__all__ = [
    "BUILTIN_CLASSES", "FEC_STREAM", "REDUNDANT_STREAM", "Action", "AdaptiveRepair",
    "BlockPlan", "ClassRule", "Classifier", "Code", "CodeError", "FecConfig",
    "FecConfigError", "FecEncoder", "FecSession", "FecStats", "FecWireError", "FixedRepair",
    "LossEstimate", "Outgoing", "PacketInfo", "PathLoss", "RepairPolicy", "StreamDecoder",
    "parse_packet", "policy_for",
]

"""Moved to :mod:`tquic.paths.ack_tracker` (paths/ no longer imports core/,
DESIGN.md "The layers"); this name stays so that existing imports keep working."""

from tquic.paths.ack_tracker import (
    DEFAULT_ACK_ELICITING_THRESHOLD as DEFAULT_ACK_ELICITING_THRESHOLD,
)
from tquic.paths.ack_tracker import DEFAULT_REORDERING_THRESHOLD as DEFAULT_REORDERING_THRESHOLD
from tquic.paths.ack_tracker import ECN_CE as ECN_CE
from tquic.paths.ack_tracker import ECN_ECT0 as ECN_ECT0
from tquic.paths.ack_tracker import ECN_ECT1 as ECN_ECT1
from tquic.paths.ack_tracker import ECN_NOT_ECT as ECN_NOT_ECT
from tquic.paths.ack_tracker import MAX_ACK_DELAY_LIMIT as MAX_ACK_DELAY_LIMIT
from tquic.paths.ack_tracker import AckTracker as AckTracker
from tquic.paths.ack_tracker import decode_ack_delay as decode_ack_delay
from tquic.paths.ack_tracker import encode_ack_delay as encode_ack_delay

__all__ = [
    "DEFAULT_ACK_ELICITING_THRESHOLD",
    "DEFAULT_REORDERING_THRESHOLD",
    "ECN_CE",
    "ECN_ECT0",
    "ECN_ECT1",
    "ECN_NOT_ECT",
    "MAX_ACK_DELAY_LIMIT",
    "AckTracker",
    "decode_ack_delay",
    "encode_ack_delay",
]

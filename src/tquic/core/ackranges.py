"""Moved to :mod:`tquic.paths.ackranges` (paths/ no longer imports core/,
DESIGN.md "The layers"); this name stays so that existing imports keep working."""

from tquic.paths.ackranges import RangeSet as RangeSet

__all__ = ["RangeSet"]

"""Moved to :mod:`tquic.paths.network_path` (paths/ no longer imports core/,
DESIGN.md "The layers"); this name stays so that existing imports keep working."""

from tquic.paths.network_path import Address as Address
from tquic.paths.network_path import NetworkPath as NetworkPath

__all__ = ["Address", "NetworkPath"]

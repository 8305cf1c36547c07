"""QUIC version numbers (RFC 9000 §15, RFC 9369 §3.1, RFC 8999 §5.4).

The version field of a long header is 32 bits.  Version 0 is reserved for
Version Negotiation packets; versions of the form 0x?a?a?a?a are reserved for
greasing, so that peers keep handling versions they do not know.
"""

from __future__ import annotations

import os

QUIC_V1 = 0x00000001  # RFC 9000 §15
QUIC_V2 = 0x6B3343CF  # RFC 9369 §3.1
VERSION_NEGOTIATION = 0x00000000  # RFC 8999 §6: the Version field of a VN packet

# Preference order: the first entry is what a client offers by default.
SUPPORTED_VERSIONS: tuple[int, ...] = (QUIC_V1, QUIC_V2)

_GREASE_MASK = 0x0F0F0F0F
_GREASE_PATTERN = 0x0A0A0A0A


def is_grease_version(version: int) -> bool:
    """True for the reserved versions 0x?a?a?a?a (RFC 9000 §15)."""
    return (version & _GREASE_MASK) == _GREASE_PATTERN


def is_supported_version(version: int) -> bool:
    """True when this implementation speaks ``version``."""
    return version in SUPPORTED_VERSIONS


def grease_version() -> int:
    """A random reserved version, to list in Version Negotiation packets (RFC 9000 §6.3)."""
    high = int.from_bytes(os.urandom(4), "big") & 0xF0F0F0F0
    return high | _GREASE_PATTERN

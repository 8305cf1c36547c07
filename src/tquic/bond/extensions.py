"""Negotiating our CONNECT-IP extensions: context IDs registered with one request header.

RFC 9484 §5 leaves the registration of non-zero Context IDs to extensions
("MAY use HTTP header fields or capsules").  Ours: the client lists what it
offers in the request header ``tquic-bond-ext``, a Structured Field
Dictionary (RFC 8941 §3.2) of ``name=context-id``; the proxy answers with the
same header naming the subset it accepted.  Client-allocated context IDs are
even (§5).  A standard peer ignores an unknown header, answers without it, and
the tunnel then uses context 0 only — so a plain RFC 9484 peer never sees an
extension datagram.

Known names: ``seq`` (a 32-bit sequence number before the IP packet, for the
receiver's reorder buffer); ``fec`` (forward error correction: FEC sources,
repairs and feedback, tquic.bond.fec.wire; each side sends repairs only for the
classes its own ``[fec]`` table protects, and decodes whatever arrives).  Other
modules register theirs by adding to :data:`KNOWN_EXTENSIONS` before the tunnel
starts.
"""

from __future__ import annotations

import re

HEADER = b"tquic-bond-ext"
SEQ = "seq"
SEQ_CONTEXT_ID = 2  # the first client-allocated (even) non-zero context ID
FEC = "fec"
FEC_CONTEXT_ID = 4

# name -> the context ID a client offers for it (even, non-zero, distinct).
KNOWN_EXTENSIONS: dict[str, int] = {SEQ: SEQ_CONTEXT_ID, FEC: FEC_CONTEXT_ID}

_MEMBER = re.compile(r"^\s*([a-z*][a-z0-9_*.-]*)\s*=\s*([0-9]{1,15})\s*$")


def encode_offer(extensions: dict[str, int]) -> bytes:
    """``seq=2, fec=4`` (RFC 8941 dictionary of integers)."""
    return ", ".join(f"{name}={ctx}" for name, ctx in sorted(extensions.items())).encode()


def parse_offer(value: bytes | None) -> dict[str, int]:
    """The dictionary of a ``tquic-bond-ext`` header; members that do not parse are ignored
    (an unknown or garbled offer only means fewer extensions, never an error)."""
    if not value:
        return {}
    out: dict[str, int] = {}
    for member in value.decode("latin-1").split(","):
        match = _MEMBER.match(member)
        if match is None:
            continue
        name, ctx = match.group(1), int(match.group(2))
        if ctx == 0 or ctx in out.values():
            continue
        out[name] = ctx
    return out


def accept(offer: dict[str, int], supported: dict[str, int]) -> dict[str, int]:
    """The proxy's answer: offered extensions it supports, with the client's context IDs
    (client-allocated ones are even, RFC 9484 §5)."""
    return {name: ctx for name, ctx in offer.items() if name in supported and ctx % 2 == 0}


def header_value(headers: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]]
                 ) -> bytes | None:
    for name, value in headers:
        if name == HEADER:
            return value
    return None

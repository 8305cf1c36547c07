"""Version negotiation rules (RFC 9368 "Compatible Version Negotiation for QUIC",
RFC 9369 §4 for QUIC v1 <-> v2, RFC 9000 §6 for Version Negotiation packets).

Pure functions; the connection's handshake seam (core/handshake.py) calls them.

Vocabulary of RFC 9368 §1.2: the *original version* is the version of the
client's first flight, the *negotiated version* the one the connection ends up
using.  With compatible negotiation the server picks the negotiated version as
soon as it has parsed the client's transport parameters (in the ClientHello) and
answers with Initial packets of the negotiated version, so no round trip is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from tquic.wire.errors import QuicError, TransportErrorCode
from tquic.wire.params import VersionInformation, decode_transport_parameters
from tquic.wire.version import QUIC_V1, QUIC_V2

VNE = TransportErrorCode.VERSION_NEGOTIATION_ERROR
# RFC 9368 §2.2: version B is compatible with A when a first flight of A can be
# converted into one of B.  RFC 9369 §4: v1 and v2 are compatible both ways.
_COMPATIBLE: dict[int, frozenset[int]] = {
    QUIC_V1: frozenset((QUIC_V1, QUIC_V2)),
    QUIC_V2: frozenset((QUIC_V1, QUIC_V2)),
}
CLIENT_HELLO = 1  # TLS HandshakeType.client_hello (RFC 9846 §4)
QUIC_TRANSPORT_PARAMETERS = 0x39  # TLS extension carrying them (RFC 9001 §8.2)
MAX_PEEK = 64 * 1024  # a ClientHello larger than this is passed on unpeeked


def is_compatible(original: int, other: int) -> bool:
    """RFC 9368 §2.2 compatibility of ``other`` with ``original`` (reflexive)."""
    return original == other or other in _COMPATIBLE.get(original, frozenset())


def client_hello_length(data: bytes) -> int | None:
    """Length of the TLS handshake message at the start of ``data`` (header included),
    or None while fewer than 4 bytes are known."""
    if len(data) < 4:
        return None
    return 4 + int.from_bytes(data[1:4], "big")


def client_hello_version_information(message: bytes) -> VersionInformation | None:
    """The client's version_information, read from its ClientHello before TLS runs
    (the server must choose its version before TLS writes EncryptedExtensions).

    None when the message is no parseable ClientHello or carries no such parameter:
    the server then stays in the original version and TLS reports any real error.
    """
    if not message or message[0] != CLIENT_HELLO:
        return None
    from tquic.crypto.tls.messages import parse_client_hello

    try:
        hello = parse_client_hello(message[4:])
    except (QuicError, ValueError):
        return None
    raw = next((value for ext, value in hello.extensions if ext == QUIC_TRANSPORT_PARAMETERS),
               None)
    if raw is None:
        return None
    try:
        return decode_transport_parameters(bytes(raw)).version_information
    except QuicError:
        return None  # TLS hands the same bytes to the engine, which closes properly


def server_choose_version(original: int, server_versions: Sequence[int],
                          client_info: VersionInformation | None) -> int:
    """Server side of RFC 9368 §2.3: the negotiated version for a first flight of
    ``original``.  The server's own preference order wins among the versions the
    client listed as available and that are compatible with ``original``.

    Raises VERSION_NEGOTIATION_ERROR when the client's Chosen Version is not the
    version its packets used (RFC 9368 §4).
    """
    if client_info is None:
        return original
    if client_info.chosen_version != original:
        raise QuicError(VNE, "client's chosen_version differs from its packets' version")
    offered = set(client_info.available_versions) | {original}
    for version in server_versions:
        if version in offered and is_compatible(original, version):
            return version
    return original


def client_check_server_info(info: VersionInformation | None, *, negotiated: int,
                             original: int, acted_on_vn: bool,
                             client_versions: Sequence[int]) -> None:
    """Client validation of the server's version_information (RFC 9368 §4).

    - The server's Chosen Version must be the negotiated version.
    - A server that switched versions, or a connection that followed a Version
      Negotiation packet, must send the parameter.
    - After a Version Negotiation packet (incompatible negotiation) the client
      checks it would have picked the same version from the server's Available
      Versions; otherwise the VN packet was forged to force a downgrade.
    """
    if info is None:
        if negotiated != original or acted_on_vn:
            raise QuicError(VNE, "server sent no version_information")
        return
    if info.chosen_version != negotiated:
        raise QuicError(VNE, "server's chosen_version is not the version in use")
    if acted_on_vn:
        available = set(info.available_versions) | {info.chosen_version}
        preferred = next((v for v in client_versions if v in available), None)
        if preferred != negotiated:
            raise QuicError(VNE, "version downgrade: the server supports a version "
                            "the client prefers")

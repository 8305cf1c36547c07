"""Transport parameters (RFC 9000 §7.4, §18) and the extensions we speak.

Wire format: a sequence of (ID varint, length varint, value) with no order
(RFC 9000 §18).  Every value rule of RFC 9000 §18.2 and of the extensions is
checked by :func:`decode_transport_parameters`; a violation is
TRANSPORT_PARAMETER_ERROR (RFC 9000 §7.4: "An endpoint MUST treat receipt of a
transport parameter with an invalid value as a connection error of type
TRANSPORT_PARAMETER_ERROR").  Duplicates are rejected too (§7.4.2 SHOULD).
Unknown and reserved (31*N+27, §18.1) IDs are ignored but kept in ``unknown``.

Extensions: max_datagram_frame_size (RFC 9221 §3), grease_quic_bit (RFC 9287
§3), min_ack_delay (draft-ietf-quic-ack-frequency §3), initial_max_path_id
(draft-ietf-quic-multipath §"initial_max_path_id"), version_information
(RFC 9368 §3).  Checks that need connection state (CIDs matching the packet
headers, Retry, zero-length CIDs with multipath) belong to the engine.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

from tquic.wire.buffer import VARINT_MAX, Buffer, encode_varint
from tquic.wire.errors import BufferReadError, QuicDecodeError, TransportErrorCode

TRANSPORT_PARAMETER_ERROR = TransportErrorCode.TRANSPORT_PARAMETER_ERROR

MAX_CID_LENGTH = 20
STATELESS_RESET_TOKEN_SIZE = 16
MIN_MAX_UDP_PAYLOAD_SIZE = 1200  # RFC 9000 §18.2: values below 1200 are invalid
MAX_ACK_DELAY_EXPONENT = 20  # RFC 9000 §18.2
MAX_ACK_DELAY_LIMIT = 1 << 14  # RFC 9000 §18.2: 2^14 ms or more is invalid
MAX_STREAMS_LIMIT = 1 << 60  # RFC 9000 §4.6
MIN_ACTIVE_CONNECTION_ID_LIMIT = 2  # RFC 9000 §18.2
MAX_PATH_ID_LIMIT = (1 << 32) - 1  # multipath §"initial_max_path_id"


class TransportParameterId(IntEnum):
    """Transport parameter IDs: ONE table, so a draft renumbering is one edit."""

    ORIGINAL_DESTINATION_CONNECTION_ID = 0x00
    MAX_IDLE_TIMEOUT = 0x01
    STATELESS_RESET_TOKEN = 0x02
    MAX_UDP_PAYLOAD_SIZE = 0x03
    INITIAL_MAX_DATA = 0x04
    INITIAL_MAX_STREAM_DATA_BIDI_LOCAL = 0x05
    INITIAL_MAX_STREAM_DATA_BIDI_REMOTE = 0x06
    INITIAL_MAX_STREAM_DATA_UNI = 0x07
    INITIAL_MAX_STREAMS_BIDI = 0x08
    INITIAL_MAX_STREAMS_UNI = 0x09
    ACK_DELAY_EXPONENT = 0x0A
    MAX_ACK_DELAY = 0x0B
    DISABLE_ACTIVE_MIGRATION = 0x0C
    PREFERRED_ADDRESS = 0x0D
    ACTIVE_CONNECTION_ID_LIMIT = 0x0E
    INITIAL_SOURCE_CONNECTION_ID = 0x0F
    RETRY_SOURCE_CONNECTION_ID = 0x10
    VERSION_INFORMATION = 0x11  # RFC 9368 §3
    MAX_DATAGRAM_FRAME_SIZE = 0x20  # RFC 9221 §3
    INITIAL_MAX_PATH_ID = 0x3E  # draft-ietf-quic-multipath
    GREASE_QUIC_BIT = 0x2AB2  # RFC 9287 §3
    MIN_ACK_DELAY = 0xFF04DE1B  # draft-ietf-quic-ack-frequency §3


def is_reserved_parameter_id(parameter_id: int) -> bool:
    """IDs of the form 31 * N + 27, reserved for greasing (RFC 9000 §18.1)."""
    return parameter_id % 31 == 27


@dataclass(frozen=True, slots=True)
class PreferredAddress:
    """The server's preferred_address (RFC 9000 §18.2, Figure 22).

    An all-zero address and port for one family means "not offered".
    """

    ipv4_address: ipaddress.IPv4Address
    ipv4_port: int
    ipv6_address: ipaddress.IPv6Address
    ipv6_port: int
    connection_id: bytes
    stateless_reset_token: bytes

    @property
    def ipv4(self) -> tuple[str, int] | None:
        """(host, port), or None for the all-zero "not offered" form."""
        if not int(self.ipv4_address) and not self.ipv4_port:
            return None
        return str(self.ipv4_address), self.ipv4_port

    @property
    def ipv6(self) -> tuple[str, int] | None:
        if not int(self.ipv6_address) and not self.ipv6_port:
            return None
        return str(self.ipv6_address), self.ipv6_port


@dataclass(frozen=True, slots=True)
class VersionInformation:
    """RFC 9368 §3: the version in use and the versions the sender would accept."""

    chosen_version: int
    available_versions: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TransportParameters:
    """One endpoint's transport parameters; defaults are the RFCs' "absent" values."""

    original_destination_connection_id: bytes | None = None
    max_idle_timeout: int = 0  # milliseconds; 0 = no idle timeout from this side
    stateless_reset_token: bytes | None = None
    max_udp_payload_size: int = 65527
    initial_max_data: int = 0
    initial_max_stream_data_bidi_local: int = 0
    initial_max_stream_data_bidi_remote: int = 0
    initial_max_stream_data_uni: int = 0
    initial_max_streams_bidi: int = 0
    initial_max_streams_uni: int = 0
    ack_delay_exponent: int = 3
    max_ack_delay: int = 25  # milliseconds
    disable_active_migration: bool = False
    preferred_address: PreferredAddress | None = None
    active_connection_id_limit: int = 2
    initial_source_connection_id: bytes | None = None
    retry_source_connection_id: bytes | None = None
    version_information: VersionInformation | None = None
    # RFC 9221 §3: absent (None) or 0 both mean DATAGRAM frames are not supported.
    max_datagram_frame_size: int | None = None
    initial_max_path_id: int | None = None  # None: multipath not supported
    grease_quic_bit: bool = False
    min_ack_delay: int | None = None  # microseconds; None: ACK_FREQUENCY not supported
    unknown: tuple[tuple[int, bytes], ...] = ()


class _Invalid(Exception):
    """Internal: a value that breaks a rule; turned into the caller's error type."""


# --- value codecs --------------------------------------------------------------------


def _decode_int(value: bytes) -> int:
    # One varint filling the whole value (RFC 9000 §16), read in place: no Buffer.
    if not value:
        raise _Invalid("truncated integer")
    size = 1 << (value[0] >> 6)
    if len(value) != size:
        raise _Invalid("truncated integer" if len(value) < size
                       else "integer value with trailing bytes")
    return int.from_bytes(value, "big") & _VARINT_MASK[size]


_VARINT_MASK = {1: 0x3F, 2: 0x3FFF, 4: 0x3FFF_FFFF, 8: 0x3FFF_FFFF_FFFF_FFFF}


def _encode_int(value: int) -> bytes:
    return encode_varint(value)


def _decode_cid(value: bytes) -> bytes:
    if len(value) > MAX_CID_LENGTH:
        raise _Invalid(f"connection ID of {len(value)} bytes")
    return value


def _encode_bytes(value: bytes) -> bytes:
    return value


def _decode_token(value: bytes) -> bytes:
    if len(value) != STATELESS_RESET_TOKEN_SIZE:
        raise _Invalid(f"stateless reset token of {len(value)} bytes")
    return value


def _decode_flag(value: bytes) -> bool:
    if value:
        raise _Invalid("zero-length parameter with a value")
    return True


def _encode_flag(value: bool) -> bytes:
    return b""


_PREFERRED_FIXED = struct.Struct("!4sH16sHB")  # addresses, ports, CID length


def _decode_preferred_address(value: bytes) -> PreferredAddress:
    fixed = _PREFERRED_FIXED.size
    if len(value) < fixed:
        raise _Invalid("preferred_address truncated")
    ipv4, ipv4_port, ipv6, ipv6_port, cid_length = _PREFERRED_FIXED.unpack_from(value)
    # §18.2: a zero-length CID in preferred_address is a TRANSPORT_PARAMETER_ERROR.
    if not 1 <= cid_length <= MAX_CID_LENGTH:
        raise _Invalid(f"preferred_address connection ID of {cid_length} bytes")
    if len(value) != fixed + cid_length + STATELESS_RESET_TOKEN_SIZE:
        raise _Invalid("preferred_address has the wrong length")
    cid = value[fixed : fixed + cid_length]
    token = value[fixed + cid_length :]
    return PreferredAddress(ipaddress.IPv4Address(ipv4), ipv4_port,
                            ipaddress.IPv6Address(ipv6), ipv6_port, cid, token)


def _encode_preferred_address(value: PreferredAddress) -> bytes:
    return _PREFERRED_FIXED.pack(value.ipv4_address.packed, value.ipv4_port,
                                 value.ipv6_address.packed, value.ipv6_port,
                                 len(value.connection_id)) + value.connection_id + \
        value.stateless_reset_token


def _decode_version_information(value: bytes) -> VersionInformation:
    # RFC 9368 §3-4: Chosen Version (32), Available Versions (32) ...; a length
    # that is not a non-zero multiple of 4, or a version of 0, fails parsing.
    if not value or len(value) % 4:
        raise _Invalid("version_information is not a list of 32-bit versions")
    versions = struct.unpack(f"!{len(value) // 4}I", value)
    if 0 in versions:
        raise _Invalid("version_information lists version 0")
    return VersionInformation(versions[0], versions[1:])


def _encode_version_information(value: VersionInformation) -> bytes:
    versions = (value.chosen_version, *value.available_versions)
    return struct.pack(f"!{len(versions)}I", *versions)


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]


_ID = TransportParameterId
_INT = (_decode_int, _encode_int)
_CID = (_decode_cid, _encode_bytes)
_FLAG = (_decode_flag, _encode_flag)
_SPECS: dict[int, _Spec] = {
    int(pid): _Spec(pid.name.lower(), *codec)
    for pid, codec in (
        (_ID.ORIGINAL_DESTINATION_CONNECTION_ID, _CID),
        (_ID.MAX_IDLE_TIMEOUT, _INT),
        (_ID.STATELESS_RESET_TOKEN, (_decode_token, _encode_bytes)),
        (_ID.MAX_UDP_PAYLOAD_SIZE, _INT),
        (_ID.INITIAL_MAX_DATA, _INT),
        (_ID.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL, _INT),
        (_ID.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE, _INT),
        (_ID.INITIAL_MAX_STREAM_DATA_UNI, _INT),
        (_ID.INITIAL_MAX_STREAMS_BIDI, _INT),
        (_ID.INITIAL_MAX_STREAMS_UNI, _INT),
        (_ID.ACK_DELAY_EXPONENT, _INT),
        (_ID.MAX_ACK_DELAY, _INT),
        (_ID.DISABLE_ACTIVE_MIGRATION, _FLAG),
        (_ID.PREFERRED_ADDRESS, (_decode_preferred_address, _encode_preferred_address)),
        (_ID.ACTIVE_CONNECTION_ID_LIMIT, _INT),
        (_ID.INITIAL_SOURCE_CONNECTION_ID, _CID),
        (_ID.RETRY_SOURCE_CONNECTION_ID, _CID),
        (_ID.VERSION_INFORMATION, (_decode_version_information,
                                   _encode_version_information)),
        (_ID.MAX_DATAGRAM_FRAME_SIZE, _INT),
        (_ID.INITIAL_MAX_PATH_ID, _INT),
        (_ID.GREASE_QUIC_BIT, _FLAG),
        (_ID.MIN_ACK_DELAY, _INT),
    )
}
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TransportParameters)}


def _rule_violation(p: TransportParameters) -> str | None:
    """The first §18.2 (or extension) value rule ``p`` breaks, or None."""
    if p.max_udp_payload_size < MIN_MAX_UDP_PAYLOAD_SIZE:
        return f"max_udp_payload_size {p.max_udp_payload_size} below 1200"
    if p.ack_delay_exponent > MAX_ACK_DELAY_EXPONENT:
        return f"ack_delay_exponent {p.ack_delay_exponent} above 20"
    if p.max_ack_delay >= MAX_ACK_DELAY_LIMIT:
        return f"max_ack_delay {p.max_ack_delay} ms is 2^14 or more"
    if p.active_connection_id_limit < MIN_ACTIVE_CONNECTION_ID_LIMIT:
        return f"active_connection_id_limit {p.active_connection_id_limit} below 2"
    if p.initial_max_streams_bidi > MAX_STREAMS_LIMIT:
        return "initial_max_streams_bidi above 2^60"
    if p.initial_max_streams_uni > MAX_STREAMS_LIMIT:
        return "initial_max_streams_uni above 2^60"
    if p.initial_max_path_id is not None and p.initial_max_path_id > MAX_PATH_ID_LIMIT:
        return "initial_max_path_id above 2^32-1"
    # ack-frequency §3: min_ack_delay (µs) must not exceed max_ack_delay (ms).
    if p.min_ack_delay is not None and p.min_ack_delay > p.max_ack_delay * 1000:
        return "min_ack_delay exceeds max_ack_delay"
    return None


def decode_transport_parameters(data: bytes) -> TransportParameters:
    """Parse a quic_transport_parameters extension body.

    Raises QuicDecodeError(TRANSPORT_PARAMETER_ERROR) on truncation, a
    duplicate ID, a malformed value, or a value out of range.  A server decodes the
    client's parameters twice (version negotiation peeks at them before TLS runs,
    RFC 9368 §2.3): the last few results are kept (the values are immutable).
    """
    return _decode_transport_parameters(bytes(data))


@functools.lru_cache(maxsize=32)
def _decode_transport_parameters(data: bytes) -> TransportParameters:
    buf = Buffer(data)
    values: dict[str, Any] = {}
    seen: set[int] = set()
    unknown: list[tuple[int, bytes]] = []
    try:
        while not buf.eof():
            parameter_id = buf.pull_varint()
            value = buf.pull_bytes(buf.pull_varint())
            if parameter_id in seen:
                raise _Invalid(f"duplicate transport parameter {parameter_id:#x}")
            seen.add(parameter_id)
            spec = _SPECS.get(parameter_id)
            if spec is None:
                unknown.append((parameter_id, value))
                continue
            try:
                values[spec.name] = spec.decode(value)
            except _Invalid as exc:
                raise _Invalid(f"{spec.name}: {exc}") from None
        params = TransportParameters(**values, unknown=tuple(unknown))
        problem = _rule_violation(params)
        if problem is not None:
            raise _Invalid(problem)
    except BufferReadError:
        raise QuicDecodeError(TRANSPORT_PARAMETER_ERROR,
                              "transport parameters truncated") from None
    except _Invalid as exc:
        raise QuicDecodeError(TRANSPORT_PARAMETER_ERROR, str(exc)) from None
    return params


def _check_encodable(p: TransportParameters) -> None:
    problem = _rule_violation(p)
    if problem is not None:
        raise ValueError(problem)
    for name in ("original_destination_connection_id", "initial_source_connection_id",
                 "retry_source_connection_id"):
        cid = getattr(p, name)
        if cid is not None and len(cid) > MAX_CID_LENGTH:
            raise ValueError(f"{name} longer than 20 bytes")
    if p.stateless_reset_token is not None and \
            len(p.stateless_reset_token) != STATELESS_RESET_TOKEN_SIZE:
        raise ValueError("stateless_reset_token must be 16 bytes")
    address = p.preferred_address
    if address is not None and (
        not 1 <= len(address.connection_id) <= MAX_CID_LENGTH
        or len(address.stateless_reset_token) != STATELESS_RESET_TOKEN_SIZE
    ):
        raise ValueError("preferred_address needs a 1..20-byte CID and a 16-byte token")
    info = p.version_information
    if info is not None and 0 in (info.chosen_version, *info.available_versions):
        raise ValueError("version_information cannot list version 0")
    ids = [pid for pid, _ in p.unknown]
    if len(set(ids)) != len(ids) or any(pid in _SPECS or pid > VARINT_MAX for pid in ids):
        raise ValueError("unknown parameters must have distinct, unknown IDs")


def encode_transport_parameters(p: TransportParameters) -> bytes:
    """The extension body for ``p``: every parameter that differs from its default,
    in ID order, then ``p.unknown`` (e.g. GREASE parameters) as given.

    Raises ValueError for values a peer would reject.
    """
    _check_encodable(p)
    parts: list[bytes] = []
    for parameter_id, spec in _SPECS.items():
        value = getattr(p, spec.name)
        if value is None or value is False or value == _DEFAULTS[spec.name]:
            continue
        encoded = spec.encode(value)
        parts.append(encode_varint(parameter_id) + encode_varint(len(encoded)) + encoded)
    for parameter_id, raw in p.unknown:
        parts.append(encode_varint(parameter_id) + encode_varint(len(raw)) + raw)
    return b"".join(parts)


_SERVER_ONLY = ("original_destination_connection_id", "preferred_address",
                "retry_source_connection_id", "stateless_reset_token")


def check_peer_parameters(p: TransportParameters, peer_is_server: bool) -> None:
    """Role rules on the peer's parameters (RFC 9000 §7.3, §18.2; multipath).

    - a client must not send server-only parameters (§18.2);
    - both sides must send initial_source_connection_id, a server also
      original_destination_connection_id (§7.3);
    - a server using a zero-length connection ID must not send
      preferred_address (§18.2);
    - a peer advertising initial_max_path_id must not use a zero-length
      connection ID (multipath §"initial_max_path_id": PROTOCOL_VIOLATION).

    Matching the values against the packet headers and Retry is the engine's
    job.  Raises QuicDecodeError(TRANSPORT_PARAMETER_ERROR, or PROTOCOL_VIOLATION
    for the multipath rule).
    """
    if not peer_is_server:
        for name in _SERVER_ONLY:
            if getattr(p, name) is not None:
                raise QuicDecodeError(TRANSPORT_PARAMETER_ERROR,
                                      f"client sent server-only parameter {name}")
    elif p.original_destination_connection_id is None:
        raise QuicDecodeError(TRANSPORT_PARAMETER_ERROR,
                              "server omitted original_destination_connection_id")
    if p.initial_source_connection_id is None:
        raise QuicDecodeError(TRANSPORT_PARAMETER_ERROR,
                              "peer omitted initial_source_connection_id")
    if p.preferred_address is not None and not p.initial_source_connection_id:
        raise QuicDecodeError(TRANSPORT_PARAMETER_ERROR,
                              "preferred_address from a server with a zero-length CID")
    if p.initial_max_path_id is not None and not p.initial_source_connection_id:
        raise QuicDecodeError(TransportErrorCode.PROTOCOL_VIOLATION,
                              "initial_max_path_id with a zero-length connection ID")

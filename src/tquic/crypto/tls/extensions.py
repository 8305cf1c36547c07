"""TLS extension codepoints and the codecs of their extension_data (RFC 9846 §4.2).

Each ``parse_*`` takes the extension_data bytes and raises ``decode_error``
on a bad length or trailing data (RFC 9846 §4.2: "receivers MUST abort the
handshake with a decode_error alert if there is data left over").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from tquic.crypto.tls.alerts import AlertDescription, TlsAlert
from tquic.crypto.tls.codec import Reader, decode_error, u16, u32, vec8, vec16

__all__ = [
    "TLS13",
    "ExtensionType",
    "Extensions",
    "OfferedPsks",
    "PskIdentity",
    "PskKeyExchangeMode",
    "encode_extensions",
    "parse_extensions",
]

TLS13 = 0x0304
Extensions = tuple[tuple[int, bytes], ...]


class ExtensionType(IntEnum):
    """ExtensionType values this implementation knows (RFC 9846 §4.2, RFC 9001 §8.2)."""

    server_name = 0
    status_request = 5
    supported_groups = 10
    signature_algorithms = 13
    use_srtp = 14
    heartbeat = 15
    application_layer_protocol_negotiation = 16
    signed_certificate_timestamp = 18
    client_certificate_type = 19
    server_certificate_type = 20
    padding = 21
    compress_certificate = 27
    record_size_limit = 28
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    oid_filters = 48
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    quic_transport_parameters = 0x39


class PskKeyExchangeMode(IntEnum):
    """RFC 9846 §4.2.9."""

    psk_ke = 0
    psk_dhe_ke = 1


# -- extension blocks -------------------------------------------------------


def parse_extensions(r: Reader, what: str, min_len: int = 0) -> Extensions:
    """Parse ``Extension extensions<min..2^16-1>``; duplicates are illegal (RFC 9846 §4.2).

    Read with slices rather than a Reader call per field: a ClientHello carries a dozen
    extensions or more, and a server parses one per handshake."""
    block = r.vector(2, what + " extensions", min_len)
    out: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    pos = 0
    end = len(block)
    from_bytes = int.from_bytes
    while pos < end:
        if end - pos < 4:  # extension_type (2) and the length of extension_data (2)
            raise decode_error(f"{what}: extension header truncated ({end - pos} bytes left)")
        ext_type = from_bytes(block[pos:pos + 2], "big")
        length = from_bytes(block[pos + 2:pos + 4], "big")
        pos += 4
        if length > end - pos:
            raise decode_error(f"{what}: extension_data of {length} bytes, {end - pos} left")
        if ext_type in seen:
            raise TlsAlert(
                AlertDescription.illegal_parameter, f"{what}: duplicate extension {ext_type}"
            )
        seen.add(ext_type)
        out.append((ext_type, block[pos:pos + length]))
        pos += length
    return tuple(out)


def encode_extensions(exts: Extensions) -> bytes:
    return vec16(b"".join(u16(t) + vec16(d) for t, d in exts))


# -- server_name (RFC 6066 §3) ---------------------------------------------


def encode_server_name(host: str) -> bytes:
    name = host.encode("ascii")
    return vec16(b"\x00" + vec16(name))


def parse_server_name(data: bytes) -> str:
    r = Reader(data)
    lst = r.sub(2, "server_name_list", 1)
    r.done("server_name")
    host: str | None = None
    while lst.remaining:
        name_type = lst.u8("name_type")
        name = lst.vector(2, "HostName", 1)
        # RFC 6066 §3: at most one name of a given type.
        if name_type == 0:
            if host is not None:
                raise TlsAlert(AlertDescription.illegal_parameter, "two host_name entries")
            try:
                host = name.decode("ascii")
            except UnicodeDecodeError:
                raise TlsAlert(AlertDescription.illegal_parameter, "host_name not ASCII") from None
    if host is None:
        raise TlsAlert(AlertDescription.illegal_parameter, "server_name without host_name")
    return host


# -- ALPN (RFC 7301 §3.1) ---------------------------------------------------


def encode_alpn(protocols: tuple[str, ...]) -> bytes:
    return vec16(b"".join(vec8(p.encode()) for p in protocols))


def parse_alpn(data: bytes) -> tuple[bytes, ...]:
    r = Reader(data)
    lst = r.sub(2, "protocol_name_list", 2)
    r.done("application_layer_protocol_negotiation")
    out: list[bytes] = []
    while lst.remaining:
        out.append(lst.vector(1, "ProtocolName", 1))
    return tuple(out)


# -- supported_versions (RFC 9846 §4.2.1) ----------------------------------


def encode_supported_versions_ch(versions: tuple[int, ...]) -> bytes:
    return vec8(b"".join(u16(v) for v in versions))


def parse_supported_versions_ch(data: bytes) -> tuple[int, ...]:
    r = Reader(data)
    lst = r.sub(1, "versions", 2, 254)
    r.done("supported_versions")
    if lst.remaining % 2:
        raise decode_error("versions: odd length")
    return tuple(lst.u16() for _ in range(lst.remaining // 2))


def parse_u16_body(data: bytes, what: str) -> int:
    r = Reader(data)
    v = r.u16(what)
    r.done(what)
    return v


# -- supported_groups / signature_algorithms (RFC 9846 §4.2.7, §4.2.3) ------


def encode_u16_list(values: tuple[int, ...]) -> bytes:
    return vec16(b"".join(u16(v) for v in values))


def parse_u16_list(data: bytes, what: str) -> tuple[int, ...]:
    r = Reader(data)
    body = r.vector(2, what, 2)
    r.done(what)
    if len(body) % 2:
        raise decode_error(f"{what}: odd length")
    # One unpack for the list (a ClientHello's signature_algorithms has a dozen entries).
    return struct.unpack(f"!{len(body) // 2}H", body)


# -- key_share (RFC 9846 §4.2.8) -------------------------------------------


def encode_key_share_entry(group: int, key_exchange: bytes) -> bytes:
    return u16(group) + vec16(key_exchange)


def encode_key_share_ch(shares: tuple[tuple[int, bytes], ...]) -> bytes:
    return vec16(b"".join(encode_key_share_entry(g, k) for g, k in shares))


def parse_key_share_ch(data: bytes) -> tuple[tuple[int, bytes], ...]:
    r = Reader(data)
    lst = r.sub(2, "client_shares")
    r.done("key_share")
    out: list[tuple[int, bytes]] = []
    while lst.remaining:
        group = lst.u16("group")
        out.append((group, lst.vector(2, "key_exchange", 1)))
    return tuple(out)


def parse_key_share_sh(data: bytes) -> tuple[int, bytes]:
    r = Reader(data)
    group = r.u16("group")
    key = r.vector(2, "key_exchange", 1)
    r.done("key_share")
    return group, key


# -- psk_key_exchange_modes (RFC 9846 §4.2.9) ------------------------------


def parse_psk_modes(data: bytes) -> bytes:
    r = Reader(data)
    modes = r.vector(1, "ke_modes", 1)
    r.done("psk_key_exchange_modes")
    return modes


# -- pre_shared_key (RFC 9846 §4.2.11) -------------------------------------


@dataclass(frozen=True, slots=True)
class PskIdentity:
    identity: bytes
    obfuscated_ticket_age: int


@dataclass(frozen=True, slots=True)
class OfferedPsks:
    identities: tuple[PskIdentity, ...]
    binders: tuple[bytes, ...]


def encode_psk_identities(identities: tuple[PskIdentity, ...]) -> bytes:
    return vec16(b"".join(vec16(i.identity) + u32(i.obfuscated_ticket_age) for i in identities))


def encode_psk_binders(binders: tuple[bytes, ...]) -> bytes:
    return vec16(b"".join(vec8(b) for b in binders))


def parse_offered_psks(data: bytes) -> OfferedPsks:
    r = Reader(data)
    ids = r.sub(2, "identities", 7)
    binders = r.sub(2, "binders", 33)
    r.done("pre_shared_key")
    identities: list[PskIdentity] = []
    while ids.remaining:
        ident = ids.vector(2, "identity", 1)
        identities.append(PskIdentity(ident, ids.u32("obfuscated_ticket_age")))
    out: list[bytes] = []
    while binders.remaining:
        out.append(binders.vector(1, "PskBinderEntry", 32, 255))
    if len(out) != len(identities):
        # RFC 9846 §4.2.11: one binder per identity.
        raise TlsAlert(AlertDescription.illegal_parameter, "binder count != identity count")
    return OfferedPsks(tuple(identities), tuple(out))


# -- early_data (RFC 9846 §4.2.10) / cookie (§4.2.2) ------------------------


def parse_empty(data: bytes, what: str) -> None:
    if data:
        raise decode_error(f"{what}: must be empty")


def parse_max_early_data(data: bytes) -> int:
    r = Reader(data)
    v = r.u32("max_early_data_size")
    r.done("early_data")
    return v


def encode_cookie(cookie: bytes) -> bytes:
    return vec16(cookie)


def parse_cookie(data: bytes) -> bytes:
    r = Reader(data)
    cookie = r.vector(2, "cookie", 1)
    r.done("cookie")
    return cookie

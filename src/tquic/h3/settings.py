"""HTTP/3 configuration (what we advertise) and the peer's SETTINGS as understood values."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tquic.h3.frames import SettingId
from tquic.h3.wt_streams import SETTING_ENABLE_WEBTRANSPORT_DRAFT02, SETTING_WT_ENABLED
from tquic.wire.buffer import VARINT_MAX


class H3ConfigError(ValueError):
    """An invalid :class:`H3Config` field; the message names the field."""


@dataclass(frozen=True, slots=True)
class H3Config:
    """Local HTTP/3 settings and limits.  Validated at construction.

    ``enable_datagrams`` sends SETTINGS_H3_DATAGRAM=1 (RFC 9297 §2.1.1); the QUIC
    configuration must also advertise ``max_datagram_frame_size``.
    ``enable_connect_protocol`` sends SETTINGS_ENABLE_CONNECT_PROTOCOL=1 and
    accepts extended CONNECT requests (RFC 9220).  ``grease`` sends reserved
    settings, frames and a reserved stream type (RFC 9114 §6.2.3, §7.2.4.1, §7.2.8).
    ``answer_malformed_requests`` (server) answers a malformed request 400 (§4.1.2
    allows a response before the stream error) instead of only resetting it.
    ``webtransport`` sends SETTINGS_WT_ENABLED (draft-ietf-webtrans-http3 §3.1) and
    the draft-02 SETTINGS_ENABLE_WEBTRANSPORT (what Chromium and aioquic speak) and
    routes WebTransport streams (:mod:`tquic.h3.wt_streams`); it needs
    ``enable_datagrams``.  ``extra_settings``: more (id, value) pairs to send, for
    extensions built on top (each id once, none of the ones above).
    """

    qpack_max_table_capacity: int = 4096
    qpack_blocked_streams: int = 16
    max_field_section_size: int | None = None  # advertised; None = unlimited (§7.2.4.1)
    max_header_frame_size: int = 64 * 1024  # largest HEADERS/PUSH_PROMISE we buffer
    max_blocked_stream_bytes: int = 1 << 20  # buffered per stream while QPACK-blocked
    enable_connect_protocol: bool = False
    enable_datagrams: bool = False
    grease: bool = True
    # Server: answer a malformed request (RFC 9114 §4.1.2) with 400 and FIN before
    # stopping its receiving side, instead of resetting the stream without a word.
    answer_malformed_requests: bool = False
    webtransport: bool = False
    extra_settings: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.qpack_max_table_capacity < (1 << 30):
            raise H3ConfigError("qpack_max_table_capacity: must be within [0, 2^30)")
        if not 0 <= self.qpack_blocked_streams < (1 << 16):
            raise H3ConfigError("qpack_blocked_streams: must be within [0, 2^16)")
        if self.max_field_section_size is not None and not (
            0 < self.max_field_section_size <= VARINT_MAX
        ):
            raise H3ConfigError("max_field_section_size: must be positive (or None)")
        if self.max_header_frame_size < 64:
            raise H3ConfigError("max_header_frame_size: must be at least 64 bytes")
        if self.max_blocked_stream_bytes < self.max_header_frame_size:
            raise H3ConfigError("max_blocked_stream_bytes: must be >= max_header_frame_size")
        if self.webtransport and not self.enable_datagrams:
            raise H3ConfigError("webtransport: needs enable_datagrams=True (draft-ietf-webtrans-http3 §3.1)")
        own = {int(s) for s in SettingId} | {SETTING_WT_ENABLED, SETTING_ENABLE_WEBTRANSPORT_DRAFT02}
        ids = [ident for ident, _ in self.extra_settings]
        if len(set(ids)) != len(ids) or own & set(ids):
            raise H3ConfigError("extra_settings: each id at most once, and none H3Config sends itself")
        if any(not (0 <= v <= VARINT_MAX and 0 <= i <= VARINT_MAX) for i, v in self.extra_settings):
            raise H3ConfigError("extra_settings: ids and values must be varints (< 2^62)")

    def local_settings(self, rng: random.Random | None = None) -> tuple[tuple[int, int], ...]:
        """The SETTINGS we send, with one GREASE setting when ``grease`` is on."""
        out: list[tuple[int, int]] = [
            (SettingId.QPACK_MAX_TABLE_CAPACITY, self.qpack_max_table_capacity),
            (SettingId.QPACK_BLOCKED_STREAMS, self.qpack_blocked_streams),
        ]
        if self.max_field_section_size is not None:
            out.append((SettingId.MAX_FIELD_SECTION_SIZE, self.max_field_section_size))
        if self.enable_connect_protocol:
            out.append((SettingId.ENABLE_CONNECT_PROTOCOL, 1))
        if self.enable_datagrams:
            out.append((SettingId.H3_DATAGRAM, 1))
        if self.webtransport:
            out.append((SETTING_WT_ENABLED, 1))
            out.append((SETTING_ENABLE_WEBTRANSPORT_DRAFT02, 1))
        out.extend(self.extra_settings)
        if self.grease:
            r = rng or random.Random()
            out.append((grease_value(r), r.getrandbits(30)))
        return tuple(out)


def grease_value(rng: random.Random) -> int:
    """A reserved codepoint ``0x1f * N + 0x21`` (RFC 9114 §7.2.8 and friends)."""
    return 0x1F * rng.randrange(0, 1 << 16) + 0x21


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """The peer's SETTINGS (or the defaults before they arrive, §7.2.4.2)."""

    qpack_max_table_capacity: int = 0
    qpack_blocked_streams: int = 0
    max_field_section_size: int | None = None
    enable_connect_protocol: bool = False
    h3_datagram: bool = False

    @classmethod
    def from_pairs(cls, pairs: tuple[tuple[int, int], ...]) -> PeerSettings:
        """Interpret validated pairs (frames.decode_settings did the checks); unknown ids ignored."""
        values = dict(pairs)
        return cls(
            qpack_max_table_capacity=values.get(SettingId.QPACK_MAX_TABLE_CAPACITY, 0),
            qpack_blocked_streams=values.get(SettingId.QPACK_BLOCKED_STREAMS, 0),
            max_field_section_size=values.get(SettingId.MAX_FIELD_SECTION_SIZE),
            enable_connect_protocol=values.get(SettingId.ENABLE_CONNECT_PROTOCOL, 0) == 1,
            h3_datagram=values.get(SettingId.H3_DATAGRAM, 0) == 1,
        )

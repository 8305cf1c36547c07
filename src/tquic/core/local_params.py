"""Our transport parameters as sent in the TLS handshake (RFC 9000 §7.4, §18).

Every connection of one configuration sends the same parameters except its
connection IDs and stateless reset token, so that shared part is encoded once
(per configuration and version) and each connection appends its own.  A server
encodes its parameters in every handshake: this is one of the costs precomputed
per server (docs/hardening.md, "Handshake CPU").
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

from tquic.wire.buffer import encode_varint
from tquic.wire.params import (
    MAX_CID_LENGTH,
    STATELESS_RESET_TOKEN_SIZE,
    TransportParameterId,
    TransportParameters,
    encode_transport_parameters,
)

__all__ = ["encode_local_parameters"]

# The parameters that differ between two connections of one configuration: the
# connection IDs and the stateless reset token (RFC 9000 §7.3, §18.2).
_PER_CONNECTION_PARAMETERS = (  # (name, ID, maximum length)
    ("original_destination_connection_id",
     TransportParameterId.ORIGINAL_DESTINATION_CONNECTION_ID, MAX_CID_LENGTH),
    ("stateless_reset_token", TransportParameterId.STATELESS_RESET_TOKEN,
     STATELESS_RESET_TOKEN_SIZE),
    ("initial_source_connection_id", TransportParameterId.INITIAL_SOURCE_CONNECTION_ID,
     MAX_CID_LENGTH),
    ("retry_source_connection_id", TransportParameterId.RETRY_SOURCE_CONNECTION_ID,
     MAX_CID_LENGTH),
)
_PER_CONNECTION_NAMES = frozenset(name for name, _, _ in _PER_CONNECTION_PARAMETERS)
_per_connection_values = operator.attrgetter(*(name for name, _, _ in _PER_CONNECTION_PARAMETERS))
_static_values = operator.attrgetter(*(
    f.name for f in dataclasses.fields(TransportParameters) if f.name not in _PER_CONNECTION_NAMES))
_STATIC_ENCODINGS: dict[tuple[Any, ...], bytes] = {}
_STATIC_ENCODINGS_SIZE = 32


def encode_local_parameters(params: TransportParameters) -> bytes:
    """``encode_transport_parameters(params)`` for our own parameters, with the part every
    connection of a configuration shares encoded once: what is left per connection is
    its CIDs and reset token.  The same parameters (RFC 9000 §18: any order), checked
    the same way (ValueError for values a peer would reject)."""
    if params.preferred_address is not None or params.unknown:
        return encode_transport_parameters(params)  # per-connection CID and token inside
    key = _static_values(params)
    static = _STATIC_ENCODINGS.get(key)
    if static is None:
        static = encode_transport_parameters(dataclasses.replace(
            params, original_destination_connection_id=None, stateless_reset_token=None,
            initial_source_connection_id=None, retry_source_connection_id=None))
        if len(_STATIC_ENCODINGS) >= _STATIC_ENCODINGS_SIZE:
            _STATIC_ENCODINGS.pop(next(iter(_STATIC_ENCODINGS)))
        _STATIC_ENCODINGS[key] = static
    parts = [static]
    for (name, parameter_id, limit), value in zip(_PER_CONNECTION_PARAMETERS,
                                                  _per_connection_values(params), strict=True):
        if value is None:
            continue
        if len(value) > limit or (parameter_id == TransportParameterId.STATELESS_RESET_TOKEN
                                  and len(value) != limit):
            raise ValueError(f"{name} of {len(value)} bytes")
        parts.append(encode_varint(parameter_id) + encode_varint(len(value)) + value)
    return b"".join(parts)

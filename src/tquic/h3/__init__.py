"""tquic.h3 — HTTP/3 (RFC 9114) with QPACK (RFC 9204, via pylsqpack), HTTP Datagrams and
the Capsule Protocol (RFC 9297) and extended CONNECT (RFC 9220).

Layers, bottom up:

- ``frames``, ``capsules``, ``headers``: codecs, streaming parsers, field validation
- ``connection.H3Connection``: the sans-I/O HTTP/3 state machine over the QUIC engine
- ``api`` (``H3Client``, ``H3Server``), ``tunnel.Tunnel``: asyncio request/response and
  CONNECT tunnels
- ``aio`` (``connect_h3``, ``serve_h3``): the above on the ``tquic.io`` endpoint
- on top: ``webtransport`` (WebTransport sessions; stream headers in ``wt_streams``),
  ``connect_udp`` / ``connect_udp_server`` (RFC 9298), ``connect_ip`` (RFC 9484)
"""

from tquic.h3.connection import H3Connection
from tquic.h3.errors import H3Error, H3ErrorCode, H3StreamError, H3UsageError
from tquic.h3.settings import H3Config

__all__ = ["H3Config", "H3Connection", "H3Error", "H3ErrorCode", "H3StreamError", "H3UsageError"]

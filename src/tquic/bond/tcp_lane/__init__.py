"""The bond's TCP lane: TCP connections as HTTP/3 CONNECT streams over the bond.

A QUIC stream is scheduled packet by packet over every path of the multipath
connection, so one TCP download through the lane gets the sum of the links —
and hosts without root (no TUN) can use the bond through SOCKS5.

Client side (the site):

- :func:`serve_socks` — a SOCKS5 server (RFC 1928, RFC 1929 username/password):
  CONNECT → one CONNECT stream; UDP ASSOCIATE → CONNECT-UDP sessions (RFC 9298).
- :func:`serve_redirect` — a transparent listener for TCP that nftables
  REDIRECTs to it (original destination from SO_ORIGINAL_DST), with the rule
  installed for a LAN interface and removed on close.
- :class:`H3Opener` — opens those streams on the bond's :class:`~tquic.h3.api.H3Client`.

Server side: :class:`ConnectRelayHandler` — CONNECT / CONNECT-UDP requests
connect onward where a :class:`TargetPolicy` allows (never an open proxy),
after the tunnel's own client authentication (:class:`BearerTokens` or any
:data:`Authenticator`).
"""

from tquic.bond.tcp_lane.auth import Authenticator, AuthResult, BearerTokens, allow_anyone
from tquic.bond.tcp_lane.listener import LaneListener, parse_listen
from tquic.bond.tcp_lane.opener import H3Opener, LaneConnectError, Opener
from tquic.bond.tcp_lane.policy import PolicyError, TargetPolicy
from tquic.bond.tcp_lane.redirect import original_destination, serve_redirect
from tquic.bond.tcp_lane.server import ConnectRelayHandler
from tquic.bond.tcp_lane.socks_server import SocksCredentials, serve_socks

__all__ = [
    "AuthResult",
    "Authenticator",
    "BearerTokens",
    "ConnectRelayHandler",
    "H3Opener",
    "LaneConnectError",
    "LaneListener",
    "Opener",
    "PolicyError",
    "SocksCredentials",
    "TargetPolicy",
    "allow_anyone",
    "original_destination",
    "parse_listen",
    "serve_redirect",
    "serve_socks",
]

"""tquic.io: the only layer that touches sockets and the clock.

- ``udp``: UDP sockets with GSO/GRO, ECN cmsgs, dual stack, interface pinning.
- ``endpoint``: ``QuicEndpoint`` — CID routing, Version Negotiation, Retry,
  stateless reset, bounded connections and handshakes, batched sends.
- ``protocol``: ``QuicConnectionProtocol`` — one connection on asyncio (timers,
  events, streams, datagrams, ``migrate()``); ``ConnectionClosedError``, ``MigrationError``.
- ``streams``: ``QuicStreamReader`` / ``QuicStreamWriter`` (asyncio-stream shaped).
- ``api``: ``connect`` / ``serve`` (re-exported as ``tquic.connect`` / ``tquic.serve``).
- ``multipath_client``: one socket per local path, ``connect_multipath``, ``open_extra_paths``.
- ``path_keeper``: ``PathKeeper`` / ``ReopenPolicy`` — re-open the path of a link that comes
  back (backoff, local link checks), with a record per path ID.
- ``blocking``: ``QuicSocket`` (``tquic.socket()``), a blocking socket-like API on a
  background event-loop thread.
"""

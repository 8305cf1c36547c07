"""What a QUIC endpoint did outside its connections, as counters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class EndpointStats:
    """Counters of what the endpoint did outside connections."""

    datagrams_received: int = 0
    datagrams_dropped: int = 0
    datagrams_sent: int = 0
    version_negotiations_sent: int = 0
    retries_sent: int = 0
    new_tokens_accepted: int = 0  # Initials whose NEW_TOKEN token validated the address
    stateless_resets_sent: int = 0
    connections_accepted: int = 0
    connections_refused: int = 0  # over max_connections / max_handshakes, or a bad token
    send_queue_overflows: int = 0
    initials_rate_limited: int = 0  # new-connection Initials over their prefix's rate
    stateless_rate_limited: int = 0  # VN / Stateless Reset not sent (prefix or global rate)
    initials_undecryptable: int = 0  # a first Initial that did not decrypt: no state kept
    handshakes_timed_out: int = 0  # connections dropped at handshake_timeout
    retry_activations: int = 0  # times retry="auto" switched Retry on
    retries_suppressed: int = 0  # Initials not answered: their peer ignores our Retries
    peers_blocked: int = 0  # peers the kernel was told to drop for a while
    # Token-less Initials the kernel dropped over kernel_initials_per_second: counted in
    # the kernel, so filled in by QuicEndpoint.stats_snapshot() (0 in the live stats).
    kernel_initials_over_budget: int = 0

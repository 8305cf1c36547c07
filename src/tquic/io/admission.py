"""Who gets a connection, and who gets an answer: the server's defences before state.

Three decisions, each cheap and each bounded, taken for datagrams that route
to no connection:

- **Address validation under load** (RFC 9000 §8.1.2, §21.1.1 "Amplification
  and handshake floods").  With ``retry="auto"`` (the default) Retry switches
  on when the handshakes in progress, the rate of new Initials or the rate of
  Initials that do not decrypt (a flood's signature: a real client's first
  Initial always decrypts) cross a threshold, and off again, with hysteresis,
  once all fall below half of it for ``retry_hold`` seconds.  A client holding a valid NEW_TOKEN token
  (§8.1.3) skips the Retry.
- **Per-source-prefix rate limits** for new Initials and for stateless answers
  (Version Negotiation §6.1, Stateless Reset §10.3): a token bucket per IPv4
  /24 or IPv6 /48 (configurable), so one network cannot use all of the
  server's handshake capacity, nor turn it into a reflector (§21.1.1, §10.3.3).
  A global bucket caps the stateless answers too.
- **Retries a peer never answers** (``RetryLedger``): a real client comes back
  with the token of each Retry within a round trip; a flooding source never
  does.  A peer address (IP and port) with ``retries_unanswered_per_peer``
  Retries outstanding gets no more (its Initials are dropped for the cost of
  a table lookup, not a token, a Retry and a send) until the count decays
  (one per second) or a token returns.  Under a flood the server's CPU then
  goes to the clients that answer.
- **Peers the kernel drops** (``PeerPenalties``): a peer address whose
  Retries go unanswered, or that sends more than ``junk_per_peer`` datagrams
  per second that reach no connection (garbage, resets provoked, refused
  Initials), is blocked for ``peer_block_seconds`` in the kernel's socket
  filter (tquic.io.peer_filter): its datagrams are dropped before they are
  queued, so a flood no longer crowds real clients' packets out of the
  socket's buffer.  Without CAP_BPF the user-space limits above work alone.
- The prefix and peer tables are LRUs of bounded size: a flood from many
  sources evicts old entries; it never grows memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tquic.io.peer_filter import SCOPE_ALL, SCOPE_TOKENLESS_INITIALS

if TYPE_CHECKING:
    from tquic.io.peer_filter import KernelPeerFilter

RetryPolicy = Literal["never", "always", "auto"]


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    """Bounds, rates and policies of one endpoint (validated at construction).

    Rates are per second; a bucket's burst equals its rate.
    """

    max_connections: int = 4096
    max_handshakes: int = 512  # handshakes in progress; Initials beyond it are dropped
    handshake_timeout: float = 10.0  # a connection not established by then is dropped
    retry: RetryPolicy = "auto"  # "auto": Retry while under load (see module docstring)
    retry_threshold: int = 64  # handshakes in progress that switch Retry on
    retry_initial_rate: float = 1000.0  # new Initials per second that switch Retry on
    retry_junk_rate: float = 20.0  # undecryptable new Initials per second that do too
    retry_hold: float = 2.0  # seconds below half the thresholds before Retry switches off
    initials_per_prefix: float = 1000.0  # new-connection Initials per second per prefix
    stateless_packets_per_second: float = 200.0  # VN + Stateless Reset, whole endpoint
    stateless_per_prefix: float = 20.0  # VN + Stateless Reset per second per prefix
    prefix_v4: int = 24  # bits of an IPv4 source that name its network
    prefix_v6: int = 48
    max_tracked_prefixes: int = 8192  # LRU size of the per-prefix bucket table
    send_queue_datagrams: int = 16384  # datagrams waiting for a full socket buffer
    retries_unanswered_per_peer: int = 16  # Retries outstanding to one address:port
    junk_per_peer: float = 20.0  # datagrams per second reaching no connection, per peer
    peer_block_seconds: float = 2.0  # how long the kernel drops a peer over a limit
    kernel_filter: bool = True  # block such peers in a socket filter (needs CAP_BPF)
    # Token-less Initials per second the socket filter lets through from peers it does
    # not block (a flood that spoofs a new source per datagram): beyond, the kernel
    # drops them, so what is queued stays what one process can read.  0: no budget.
    kernel_initials_per_second: float = 10000.0
    # A connection that receives nothing for between one and two of these intervals
    # drops the OpenSSL contexts of its keys (rebuilt by its next packet): ~7 KB of
    # memory per idle connection.  0 keeps them for ever.
    quiet_after: float = 15.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_handshakes", "max_tracked_prefixes",
                     "send_queue_datagrams", "retries_unanswered_per_peer"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        if self.retry not in ("never", "always", "auto"):
            raise ValueError("retry: must be 'never', 'always' or 'auto'")
        if self.retry_threshold < 0:
            raise ValueError("retry_threshold: must not be negative")
        for name in ("retry_initial_rate", "retry_junk_rate", "initials_per_prefix",
                     "stateless_packets_per_second", "stateless_per_prefix",
                     "handshake_timeout", "junk_per_peer", "peer_block_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive")
        if self.retry_hold < 0:
            raise ValueError("retry_hold: must not be negative")
        if self.kernel_initials_per_second < 0:
            raise ValueError("kernel_initials_per_second: must not be negative (0 = no budget)")
        if self.quiet_after < 0:
            raise ValueError("quiet_after: must not be negative (0 turns it off)")
        if not 0 <= self.prefix_v4 <= 32:
            raise ValueError("prefix_v4: must be within [0, 32] bits")
        if not 0 <= self.prefix_v6 <= 128:
            raise ValueError("prefix_v6: must be within [0, 128] bits")


def limits_from_mapping(values: Mapping[str, object]) -> EndpointLimits:
    """EndpointLimits from a config table (TOML ``[limits]``): each key a field name,
    each value of the field's type; raises ValueError naming the key at fault."""
    defaults = EndpointLimits()
    names = {f.name for f in dataclasses.fields(EndpointLimits)}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise ValueError(f"{key}: unknown limit; known: {', '.join(sorted(names))}")
        checked[key] = _limit_value(key, value, getattr(defaults, key))
    return EndpointLimits(**checked)


def _limit_value(key: str, value: object, default: object) -> object:
    # bool is an int to Python, and TOML's 3 is not its 3.0: compare types exactly.
    if isinstance(default, float):
        if type(value) not in (int, float):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        return float(value)  # type: ignore[arg-type]
    if type(value) is not type(default):
        kind = {int: "a whole number", bool: "true or false", str: "text"}.get(
            type(default), type(default).__name__)
        raise ValueError(f"{key}: expected {kind}, got {value!r}")
    return value


class TokenBucket:
    """``rate`` events per second, bursts of ``rate``."""

    __slots__ = ("_last", "_rate", "_tokens")

    def __init__(self, rate: float, now: float | None = None) -> None:
        self._rate = rate
        self._tokens = rate
        self._last = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> bool:
        if now is None:
            now = time.monotonic()
        tokens = self._tokens + (now - self._last) * self._rate
        self._tokens = tokens if tokens < self._rate else self._rate
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class BucketTable:
    """One token bucket per key, in an LRU table of bounded size."""

    __slots__ = ("_buckets", "_limit", "_rate")

    def __init__(self, rate: float, limit: int) -> None:
        self._rate = rate
        self._limit = limit
        self._buckets: OrderedDict[object, TokenBucket] = OrderedDict()

    def take_key(self, key: object, now: float) -> bool:
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self._limit:
                buckets.popitem(last=False)  # the least recently seen key
            bucket = buckets[key] = TokenBucket(self._rate, now)
        else:
            buckets.move_to_end(key)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)


class PrefixBuckets(BucketTable):
    """One token bucket per source prefix."""

    __slots__ = ("_v4_shift", "_v6_shift")

    def __init__(self, rate: float, limit: int, prefix_v4: int, prefix_v6: int) -> None:
        super().__init__(rate, limit)
        self._v4_shift = 32 - prefix_v4
        self._v6_shift = 128 - prefix_v6

    def prefix(self, host: str) -> tuple[int, int]:
        """(IP version, network number) of ``host`` under the configured prefix length."""
        # inet_pton, not ipaddress: this runs for every Initial of a flood.
        try:
            if ":" not in host:
                return (4, int.from_bytes(socket.inet_pton(socket.AF_INET, host), "big")
                        >> self._v4_shift)
            packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        except OSError:
            return (0, 0)
        return (6, int.from_bytes(packed, "big") >> self._v6_shift)

    def take(self, host: str, now: float) -> bool:
        return self.take_key(self.prefix(host), now)


class RetryLedger:
    """Retries sent to each peer address and not yet answered with their token (see
    the module docstring); the count decays by one per second."""

    __slots__ = ("_entries", "_limit", "_max")

    DECAY_PER_SECOND = 1.0

    def __init__(self, max_unanswered: int, limit: int) -> None:
        self._max = max_unanswered
        self._limit = limit
        self._entries: OrderedDict[tuple[str, int], list[float]] = OrderedDict()  # count, at

    def _count(self, peer: tuple[str, int], now: float) -> list[float] | None:
        entry = self._entries.get(peer)
        if entry is not None:
            entry[0] = max(0.0, entry[0] - (now - entry[1]) * self.DECAY_PER_SECOND)
            entry[1] = now
        return entry

    def allow(self, peer: tuple[str, int], now: float) -> bool:
        """May ``peer`` be sent one more Retry?"""
        entry = self._count(peer, now)
        return entry is None or entry[0] + 1.0 <= self._max

    def sent(self, peer: tuple[str, int], now: float) -> None:
        entry = self._count(peer, now)
        if entry is None:
            if len(self._entries) >= self._limit:
                self._entries.popitem(last=False)
            self._entries[peer] = [1.0, now]
        else:
            entry[0] += 1.0
            self._entries.move_to_end(peer)

    def answered(self, peer: tuple[str, int]) -> None:
        """``peer`` came back with a valid Retry token: it is a real client."""
        self._entries.pop(peer, None)

    def __len__(self) -> int:
        return len(self._entries)


class PeerPenalties:
    """Peers over a limit, blocked in the kernel (see the module docstring).

    Remembers what it asked the kernel for, so datagrams already queued behind a
    block cost no further system call; the table is an LRU of bounded size.
    """

    __slots__ = ("_blocked", "_filter", "_junk", "_limit", "_over_budget", "_seconds", "blocks")

    def __init__(self, limits: EndpointLimits, kernel_filter: KernelPeerFilter | None) -> None:
        self._filter = kernel_filter
        self._junk = BucketTable(limits.junk_per_peer, limits.max_tracked_prefixes)
        self._seconds = limits.peer_block_seconds
        self._limit = limits.max_tracked_prefixes
        self._blocked: OrderedDict[tuple[str, int], tuple[float, int]] = OrderedDict()
        self.blocks = 0  # blocks the kernel was asked for
        self._over_budget = 0

    @property
    def in_kernel(self) -> bool:
        return self._filter is not None

    def initials_over_budget(self) -> int:
        """Token-less Initials the kernel dropped over its budget (after :meth:`close`,
        the count it had then; 0 without a filter)."""
        if self._filter is not None:
            with contextlib.suppress(OSError):
                self._over_budget = self._filter.initials_over_budget()
        return self._over_budget

    def attach(self, sock: socket.socket) -> None:
        """Filter ``sock``'s datagrams through the kernel's block list (raises OSError)."""
        if self._filter is not None:
            self._filter.attach(sock)

    def junk(self, peer: tuple[str, int], now: float) -> None:
        """``peer`` sent a datagram that reached no connection."""
        if self._filter is not None and not self._junk.take_key(peer, now):
            self._block(peer, now, SCOPE_ALL)

    def retry_refused(self, peer: tuple[str, int], now: float) -> None:
        """``peer`` has too many Retries outstanding: drop its tokenless Initials."""
        if self._filter is not None:
            self._block(peer, now, SCOPE_TOKENLESS_INITIALS)

    def forgive(self, peer: tuple[str, int]) -> None:
        """Lift a block of ``peer``'s token-less Initials (it answered a Retry after
        all); a block of everything stays."""
        held = self._blocked.get(peer)
        if held is None or held[1] != SCOPE_TOKENLESS_INITIALS or self._filter is None:
            return
        del self._blocked[peer]
        with contextlib.suppress(OSError):  # a failing map: the block expires anyway
            self._filter.unblock(peer)

    def _block(self, peer: tuple[str, int], now: float, scope: int) -> None:
        assert self._filter is not None
        held = self._blocked.get(peer)
        if held is not None and held[0] > now and held[1] >= scope:
            return  # blocked already: this datagram was queued before the block
        try:
            self._filter.block(peer, self._seconds, scope)
        except OSError:
            return  # a full or failing map: the user-space limits still hold
        self.blocks += 1
        if held is None and len(self._blocked) >= self._limit:
            self._blocked.popitem(last=False)
        self._blocked[peer] = (now + self._seconds, scope)
        self._blocked.move_to_end(peer)

    def close(self) -> None:
        if self._filter is not None:
            self.initials_over_budget()  # the final count outlives the map
            self._filter.close()
            self._filter = None


class Admission:
    """The endpoint's gatekeeper: Retry mode, Initial and stateless-answer budgets."""

    __slots__ = (
        "_below_since",
        "_initial_count",
        "_initials",
        "_junk_count",
        "_rate_window_start",
        "_stateless",
        "_stateless_global",
        "initial_rate",
        "junk_rate",
        "limits",
        "penalties",
        "retry_activations",
        "retry_active",
        "retry_ledger",
    )

    def __init__(self, limits: EndpointLimits, now: float | None = None,
                 kernel_filter: KernelPeerFilter | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.limits = limits
        self.penalties = PeerPenalties(limits, kernel_filter)
        self._initials = PrefixBuckets(limits.initials_per_prefix, limits.max_tracked_prefixes,
                                       limits.prefix_v4, limits.prefix_v6)
        self._stateless = PrefixBuckets(limits.stateless_per_prefix,
                                        limits.max_tracked_prefixes, limits.prefix_v4,
                                        limits.prefix_v6)
        self._stateless_global = TokenBucket(limits.stateless_packets_per_second, now)
        self.retry_ledger = RetryLedger(limits.retries_unanswered_per_peer,
                                        limits.max_tracked_prefixes)
        self.retry_active = limits.retry == "always"
        self.retry_activations = 0  # times "auto" switched Retry on
        self.initial_rate = 0.0  # new Initials per second over the last window
        self.junk_rate = 0.0  # of which did not decrypt
        self._initial_count = 0
        self._junk_count = 0
        self._rate_window_start = now
        self._below_since: float | None = None

    def allow_initial(self, host: str, now: float) -> bool:
        """A new-connection Initial from ``host``: within its prefix's rate?"""
        self._initial_count += 1
        return self._initials.take(host, now)

    def allow_retry(self, peer: tuple[str, int], now: float) -> bool:
        """May ``peer`` be sent a Retry now?  If not, the kernel stops its tokenless
        Initials for a while (they would be refused again)."""
        ledger = self.retry_ledger
        if ledger.allow(peer, now):
            ledger.sent(peer, now)
            return True
        self.penalties.retry_refused(peer, now)
        return False

    def retry_answered(self, peer: tuple[str, int]) -> None:
        """``peer`` came back with a valid Retry token: a real client (a load generator's
        socket with many handshakes under way is one), its slate wiped."""
        self.retry_ledger.answered(peer)
        self.penalties.forgive(peer)

    def note_undecryptable(self) -> None:
        """A new-connection Initial whose payload did not decrypt."""
        self._junk_count += 1

    def allow_stateless(self, host: str, now: float) -> bool:
        """May we send a Version Negotiation or Stateless Reset to ``host``?"""
        return self._stateless.take(host, now) and self._stateless_global.take(now)

    def need_retry(self, handshaking: int, now: float) -> bool:
        """Must this Initial (without a valid token) be answered with a Retry?"""
        policy = self.limits.retry
        if policy != "auto":
            return policy == "always"
        self._update_rate(now)
        limits = self.limits
        if not self.retry_active:
            if (handshaking >= limits.retry_threshold
                    or self.initial_rate >= limits.retry_initial_rate
                    or self.junk_rate >= limits.retry_junk_rate):
                self.retry_active = True
                self.retry_activations += 1
                self._below_since = None
            return self.retry_active
        # Hysteresis: off only after a quiet spell below half of both thresholds.
        if (handshaking < limits.retry_threshold / 2
                and self.initial_rate < limits.retry_initial_rate / 2
                and self.junk_rate < limits.retry_junk_rate / 2):
            if self._below_since is None:
                self._below_since = now
            elif now - self._below_since >= limits.retry_hold:
                self.retry_active = False
        else:
            self._below_since = None
        return self.retry_active

    def _update_rate(self, now: float) -> None:
        # A rate over windows of 0.25 s: reacts within a quarter second, costs one
        # subtraction per Initial.
        elapsed = now - self._rate_window_start
        if elapsed >= 0.25:
            self.initial_rate = self._initial_count / elapsed
            self.junk_rate = self._junk_count / elapsed
            self._initial_count = self._junk_count = 0
            self._rate_window_start = now
            return
        # Inside a window, a burst already over the old rate counts at once.
        self.initial_rate = max(self.initial_rate, self._initial_count / 0.25)
        self.junk_rate = max(self.junk_rate, self._junk_count / 0.25)

    @property
    def tracked_prefixes(self) -> int:
        return len(self._initials) + len(self._stateless)

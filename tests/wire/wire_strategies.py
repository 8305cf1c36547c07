"""Hypothesis strategies for every frame type (shared by the tests/wire modules)."""

from __future__ import annotations

from hypothesis import strategies as st

from tquic.wire.buffer import VARINT_MAX
from tquic.wire.frames import (
    AckFrame,
    AckFrequencyFrame,
    ConnectionCloseFrame,
    CryptoFrame,
    DataBlockedFrame,
    DatagramFrame,
    Frame,
    HandshakeDoneFrame,
    ImmediateAckFrame,
    MaxDataFrame,
    MaxPathIdFrame,
    MaxStreamDataFrame,
    MaxStreamsFrame,
    NewConnectionIdFrame,
    NewTokenFrame,
    PaddingFrame,
    PathAbandonFrame,
    PathAckFrame,
    PathChallengeFrame,
    PathCidsBlockedFrame,
    PathNewConnectionIdFrame,
    PathResponseFrame,
    PathRetireConnectionIdFrame,
    PathsBlockedFrame,
    PathStatusAvailableFrame,
    PathStatusBackupFrame,
    PingFrame,
    ResetStreamFrame,
    RetireConnectionIdFrame,
    StopSendingFrame,
    StreamDataBlockedFrame,
    StreamFrame,
    StreamsBlockedFrame,
)

varints = st.integers(min_value=0, max_value=VARINT_MAX)
# Small and large values both: the varint size boundaries matter most.
varint_mix = st.one_of(st.integers(min_value=0, max_value=70000), varints)
path_ids = st.integers(min_value=0, max_value=2**32 - 1)
data = st.binary(max_size=64)
cids = st.binary(min_size=1, max_size=20)
tokens16 = st.binary(min_size=16, max_size=16)
bytes8 = st.binary(min_size=8, max_size=8)
ecn_counts = st.none() | st.tuples(varint_mix, varint_mix, varint_mix)


@st.composite
def ack_ranges(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    """Valid inclusive (smallest, largest) ranges, largest first, disjoint, non-adjacent."""
    largest = draw(st.integers(min_value=0, max_value=2**62 - 1))
    smallest = largest - draw(st.integers(min_value=0, max_value=min(largest, 2000)))
    ranges = [(smallest, largest)]
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        gap = draw(st.integers(min_value=0, max_value=300))
        length = draw(st.integers(min_value=0, max_value=300))
        next_largest = smallest - gap - 2
        if next_largest - length < 0:
            break
        smallest = next_largest - length
        ranges.append((smallest, next_largest))
    return tuple(ranges)


@st.composite
def stream_frames(draw: st.DrawFn) -> StreamFrame:
    payload = draw(data)
    offset = draw(st.integers(min_value=0, max_value=VARINT_MAX - len(payload)))
    return StreamFrame(draw(varints), offset, payload, draw(st.booleans()))


@st.composite
def crypto_frames(draw: st.DrawFn) -> CryptoFrame:
    payload = draw(data)
    return CryptoFrame(draw(st.integers(min_value=0, max_value=VARINT_MAX - len(payload))),
                       payload)


@st.composite
def new_cid_fields(draw: st.DrawFn) -> tuple[int, int, bytes, bytes]:
    sequence_number = draw(varint_mix)
    retire_prior_to = draw(st.integers(min_value=0, max_value=sequence_number))
    return sequence_number, retire_prior_to, draw(cids), draw(tokens16)


@st.composite
def connection_close_frames(draw: st.DrawFn) -> ConnectionCloseFrame:
    if draw(st.booleans()):
        return ConnectionCloseFrame(draw(varint_mix), None, draw(data), True)
    return ConnectionCloseFrame(draw(varint_mix), draw(varint_mix), draw(data), False)


# One strategy per frame class; the tests check this covers every class in Frame.
FRAME_STRATEGIES: dict[type, st.SearchStrategy[Frame]] = {
    PaddingFrame: st.builds(PaddingFrame, st.integers(min_value=1, max_value=100)),
    PingFrame: st.just(PingFrame()),
    AckFrame: st.builds(AckFrame, ack_ranges(), varint_mix, ecn_counts),
    ResetStreamFrame: st.builds(ResetStreamFrame, varints, varint_mix, varints),
    StopSendingFrame: st.builds(StopSendingFrame, varints, varint_mix),
    CryptoFrame: crypto_frames(),
    NewTokenFrame: st.builds(NewTokenFrame, st.binary(min_size=1, max_size=64)),
    StreamFrame: stream_frames(),
    MaxDataFrame: st.builds(MaxDataFrame, varint_mix),
    MaxStreamDataFrame: st.builds(MaxStreamDataFrame, varints, varint_mix),
    MaxStreamsFrame: st.builds(MaxStreamsFrame, st.integers(min_value=0, max_value=2**60),
                               st.booleans()),
    DataBlockedFrame: st.builds(DataBlockedFrame, varint_mix),
    StreamDataBlockedFrame: st.builds(StreamDataBlockedFrame, varints, varint_mix),
    StreamsBlockedFrame: st.builds(StreamsBlockedFrame,
                                   st.integers(min_value=0, max_value=2**60), st.booleans()),
    NewConnectionIdFrame: new_cid_fields().map(lambda f: NewConnectionIdFrame(*f)),
    RetireConnectionIdFrame: st.builds(RetireConnectionIdFrame, varint_mix),
    PathChallengeFrame: st.builds(PathChallengeFrame, bytes8),
    PathResponseFrame: st.builds(PathResponseFrame, bytes8),
    ConnectionCloseFrame: connection_close_frames(),
    HandshakeDoneFrame: st.just(HandshakeDoneFrame()),
    ImmediateAckFrame: st.just(ImmediateAckFrame()),
    AckFrequencyFrame: st.builds(AckFrequencyFrame, varint_mix, varint_mix,
                                 st.integers(min_value=0, max_value=2**14 * 1000 - 1),
                                 varint_mix),
    DatagramFrame: st.builds(DatagramFrame, data),
    PathAckFrame: st.builds(PathAckFrame, path_ids, ack_ranges(), varint_mix, ecn_counts),
    PathAbandonFrame: st.builds(PathAbandonFrame, path_ids, varint_mix),
    PathStatusBackupFrame: st.builds(PathStatusBackupFrame, path_ids, varint_mix),
    PathStatusAvailableFrame: st.builds(PathStatusAvailableFrame, path_ids, varint_mix),
    PathNewConnectionIdFrame: st.tuples(path_ids, new_cid_fields()).map(
        lambda t: PathNewConnectionIdFrame(t[0], *t[1])),
    PathRetireConnectionIdFrame: st.builds(PathRetireConnectionIdFrame, path_ids, varint_mix),
    MaxPathIdFrame: st.builds(MaxPathIdFrame, path_ids),
    PathsBlockedFrame: st.builds(PathsBlockedFrame, path_ids),
    PathCidsBlockedFrame: st.builds(PathCidsBlockedFrame, path_ids, varint_mix),
}

any_frame: st.SearchStrategy[Frame] = st.one_of(*FRAME_STRATEGIES.values())
non_padding_frame: st.SearchStrategy[Frame] = st.one_of(
    *(s for cls, s in FRAME_STRATEGIES.items() if cls is not PaddingFrame)
)

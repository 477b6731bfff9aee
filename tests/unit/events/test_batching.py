"""How events are cut into PutEvents calls: at most 10 entries and 256 KB each, in order."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.events.samples import rate_limits_observed
from vmx.aws.event_bus import MAX_ENTRIES_PER_CALL, MAX_REQUEST_BYTES, batches, entry_size
from vmx.events.models import put_events_entry

sizes = st.lists(st.integers(min_value=1, max_value=MAX_REQUEST_BYTES), max_size=60)


@given(sizes)
def test_batches_keep_every_entry_in_order(entry_sizes: list[int]) -> None:
    cut = batches(entry_sizes, size=lambda size: size)

    assert [size for batch in cut for size in batch] == entry_sizes


@given(sizes)
def test_batches_stay_within_the_limits(entry_sizes: list[int]) -> None:
    for batch in batches(entry_sizes, size=lambda size: size):
        assert 1 <= len(batch) <= MAX_ENTRIES_PER_CALL
        assert sum(batch) <= MAX_REQUEST_BYTES


@given(sizes)
def test_a_batch_ends_only_when_the_next_entry_would_not_fit(entry_sizes: list[int]) -> None:
    cut = batches(entry_sizes, size=lambda size: size)

    for batch, following in itertools.pairwise(cut):
        assert len(batch) == MAX_ENTRIES_PER_CALL or sum(batch) + following[0] > MAX_REQUEST_BYTES


def test_small_events_go_ten_to_a_call() -> None:
    assert [len(batch) for batch in batches(list(range(25)), size=lambda _: 1000)] == [10, 10, 5]


def test_an_entry_is_sized_as_eventbridge_counts_it() -> None:
    # 14 bytes for Time, then the UTF-8 bytes of Source, DetailType and Detail
    event = rate_limits_observed(connection_name="prod-é")
    entry = put_events_entry(event, "vmx-events")

    expected = 14 + len(b"vmx.ai-connections") + len(b"RateLimitsObserved") + len(event.model_dump_json().encode())
    assert entry_size(entry) == expected
    assert len(entry["Detail"].encode()) > len(entry["Detail"])

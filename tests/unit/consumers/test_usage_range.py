"""The range of a usage query, refused before anything is read, naming the query parameter at fault."""

from datetime import UTC, datetime

import pytest

from vmx.consumers.usage_range import UsageRange, usage_range
from vmx.consumers.usage_stats import Granularity
from vmx.errors import InvalidInput

NOW = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)


def refused(start: str | None, end: str | None, granularity: str) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        usage_range(start, end, granularity, NOW)
    return [(detail.field, detail.message) for detail in caught.value.details]


def test_a_valid_range_is_read_in_utc() -> None:
    assert usage_range("2025-03-14T00:00:00+02:00", "2025-03-15T00:00:00Z", "hour", NOW) == UsageRange(
        Granularity.HOUR, datetime(2025, 3, 13, 22, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("start", "end", "granularity", "field", "message"),
    [
        ("yesterday", "2025-03-15T00:00:00Z", "hour", "from", "from must be an ISO 8601 date and time"),
        ("2025-03-14T00:00:00", "2025-03-15T00:00:00Z", "hour", "from", "from needs a time zone, such as Z or +02:00"),
        ("2025-03-14T00:00:00Z", "2025-03-15", "day", "to", "to needs a time zone, such as Z or +02:00"),
        ("2025-03-14T00:00:00Z", "2025-03-14T00:00:00Z", "hour", "to", "to must be later than from"),
        ("2025-03-15T00:00:00Z", "2025-03-14T00:00:00Z", "day", "to", "to must be later than from"),
        (
            "2025-03-14T00:00:00Z",
            "2025-03-15T00:00:00Z",
            "minute",
            "granularity",
            "granularity must be 'hour' or 'day'",
        ),
        ("2025-01-01T00:00:00Z", "2025-02-01T00:00:01Z", "hour", "to", "a range of hour buckets spans at most 31 days"),
        ("2024-01-01T00:00:00Z", "2025-01-01T00:00:01Z", "day", "to", "a range of day buckets spans at most 366 days"),
    ],
)
def test_a_bad_range_names_its_parameter(start: str, end: str, granularity: str, field: str, message: str) -> None:
    assert refused(start, end, granularity) == [(field, message)]


def test_the_longest_ranges_are_allowed() -> None:
    assert usage_range("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "hour", NOW).granularity is Granularity.HOUR
    assert usage_range("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "day", NOW).granularity is Granularity.DAY


def test_every_parameter_at_fault_is_named_at_once() -> None:
    assert [field for field, _ in refused("2025-03-14", "later", "week")] == ["from", "to", "granularity"]


def test_left_out_the_range_is_the_last_24_hours() -> None:
    assert usage_range(None, None, "hour", NOW) == UsageRange(
        Granularity.HOUR, datetime(2025, 5, 31, 12, 30, tzinfo=UTC), NOW
    )


def test_from_left_out_is_24_hours_before_to_and_to_left_out_is_now() -> None:
    end = datetime(2025, 3, 15, tzinfo=UTC)
    assert usage_range(None, "2025-03-15T00:00:00Z", "day", NOW).start == datetime(2025, 3, 14, tzinfo=UTC)
    assert usage_range(None, "2025-03-15T00:00:00Z", "day", NOW).end == end
    assert usage_range("2025-06-01T00:00:00Z", None, "hour", NOW) == UsageRange(
        Granularity.HOUR, datetime(2025, 6, 1, tzinfo=UTC), NOW
    )


def test_a_from_after_now_with_no_to_is_refused_on_to() -> None:
    assert refused("2025-06-02T00:00:00Z", None, "hour") == [("to", "to must be later than from")]

"""The rules every capacity store shares: which limits apply, their order, and the header window."""

from datetime import UTC, datetime

import pytest

from vmx.capacity.ledger import (
    CapacityExceeded,
    WindowLimit,
    WindowUsage,
    admissible_limits,
    in_refusal_order,
    limits_for,
    tightest,
)
from vmx.capacity.limits import CapacityDimension, CapacityEntry, CapacityPeriod

MINUTE, HOUR, DAY, LIFETIME = CapacityPeriod.MINUTE, CapacityPeriod.HOUR, CapacityPeriod.DAY, CapacityPeriod.LIFETIME
NOW = datetime(2025, 3, 14, 12, 30, 15, tzinfo=UTC)
SOURCE_IP = CapacityDimension.SOURCE_IP


def test_limits_for_keeps_the_enabled_entries_of_one_dimension() -> None:
    entries = [
        CapacityEntry(period=MINUTE, requests=10),
        CapacityEntry(period=HOUR, tokens=5000, enabled=False),
        CapacityEntry(period=DAY, requests=100, tokens=9000),
        CapacityEntry(period=MINUTE, requests=2, dimension=SOURCE_IP),
        CapacityEntry(period=HOUR, requests=3, dimension=SOURCE_IP, enabled=False),
    ]

    assert limits_for(entries, None) == [WindowLimit(MINUTE, 10, None), WindowLimit(DAY, 100, 9000)]
    assert limits_for(entries, SOURCE_IP) == [WindowLimit(MINUTE, 2, None)]
    assert limits_for([], None) == []


def test_limits_are_checked_shortest_period_first() -> None:
    limits = [WindowLimit(LIFETIME, 9, None), WindowLimit(MINUTE, 1, None), WindowLimit(DAY, None, 5)]

    assert [limit.period for limit in in_refusal_order(limits)] == [MINUTE, DAY, LIFETIME]


def test_one_limit_per_period() -> None:
    with pytest.raises(ValueError, match="one limit per period"):
        in_refusal_order([WindowLimit(MINUTE, 1, None), WindowLimit(MINUTE, None, 5)])


def test_a_request_no_window_could_hold_is_refused_before_any_count() -> None:
    with pytest.raises(CapacityExceeded) as too_large:
        admissible_limits([WindowLimit(MINUTE, 10, 100), WindowLimit(HOUR, None, 50)], 60, NOW)
    with pytest.raises(CapacityExceeded) as closed:
        admissible_limits([WindowLimit(DAY, 0, None)], 0, NOW)

    assert (too_large.value.period, too_large.value.limit_kind, too_large.value.limit) == (HOUR, "tokens", 50)
    assert (closed.value.period, closed.value.limit_kind, closed.value.limit) == (DAY, "requests", 0)


def test_tokens_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        admissible_limits([WindowLimit(MINUTE, 10, None)], -1, NOW)


def test_a_refusal_says_which_limit_and_when_it_resets_and_nothing_else() -> None:
    with pytest.raises(CapacityExceeded) as refused:
        admissible_limits([WindowLimit(MINUTE, None, 100)], 101, NOW)
    with pytest.raises(CapacityExceeded) as forever:
        admissible_limits([WindowLimit(LIFETIME, 0, None)], 1, NOW)

    assert refused.value.retry_after_seconds == 45
    assert refused.value.resets_at == datetime(2025, 3, 14, 12, 31, tzinfo=UTC)
    assert str(refused.value) == "the minute tokens limit of 100 leaves no room for this request"
    assert (forever.value.retry_after_seconds, forever.value.resets_at) == (None, None)


def test_retry_after_rounds_up_to_a_whole_second() -> None:
    with pytest.raises(CapacityExceeded) as refused:
        admissible_limits([WindowLimit(MINUTE, 0, None)], 0, datetime(2025, 3, 14, 12, 30, 59, 999000, tzinfo=UTC))

    assert refused.value.retry_after_seconds == 1


def usage(
    period: CapacityPeriod,
    requests: tuple[int, int | None] = (0, None),
    tokens: tuple[int, int | None] = (0, None),
    resets_at: datetime | None = None,
) -> WindowUsage:
    return WindowUsage(period, requests[0], tokens[0], requests[1], tokens[1], resets_at)


def test_remaining_never_goes_below_zero() -> None:
    overdrawn = usage(MINUTE, requests=(3, 5), tokens=(1200, 1000))

    assert (overdrawn.requests_remaining, overdrawn.tokens_remaining) == (2, 0)
    assert usage(MINUTE).requests_remaining is None


def test_tightest_picks_the_least_room_for_each_kind() -> None:
    minute = usage(MINUTE, requests=(8, 10), tokens=(100, 1000), resets_at=NOW)
    day = usage(DAY, requests=(50, 100), tokens=(9950, 10000), resets_at=NOW.replace(hour=23))

    assert tightest([minute, day]) == (minute, day)


def test_tightest_breaks_ties_by_the_soonest_reset_and_puts_lifetime_last() -> None:
    lifetime = usage(LIFETIME, requests=(0, 2))
    day = usage(DAY, requests=(8, 10), resets_at=NOW.replace(hour=23))
    hour = usage(HOUR, requests=(3, 5), resets_at=NOW.replace(hour=13))

    assert tightest([lifetime, day, hour])[0] == hour
    assert tightest([lifetime, day])[0] == day


def test_tightest_is_none_for_a_kind_nothing_limits() -> None:
    assert tightest([usage(MINUTE, requests=(1, 10), resets_at=NOW)])[1] is None
    assert tightest([]) == (None, None)

"""Rules of the capacity core that a change would break silently: the lifetime window's id, what a full or
overdrawn window leaves and says in its headers, and which window the headers describe on a tie."""

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from tests.capacity_fakes import InMemoryCapacityCounters
from tests.unit.capacity.counters_contract import new_scope
from vmx.capacity.ledger import WindowLimit, WindowUsage, tightest
from vmx.capacity.limits import CapacityPeriod
from vmx.capacity.windows import counting_window, current_window, has_ended
from vmx.http.rate_limits import rate_limit_headers
from vmx.use_cases.refusals import RateLimits

MINUTE, DAY, WEEK, LIFETIME = CapacityPeriod.MINUTE, CapacityPeriod.DAY, CapacityPeriod.WEEK, CapacityPeriod.LIFETIME
NOW = datetime(2025, 3, 14, 12, 30, 15, tzinfo=UTC)
NEXT_MINUTE = datetime(2025, 3, 14, 12, 31, tzinfo=UTC)
# the last second of an ISO week: a Sunday, whose day and week both end at Monday 00:00 UTC
WEEKS_END = datetime(2025, 3, 16, 23, 59, 59, tzinfo=UTC)
NEXT_MONDAY = datetime(2025, 3, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    "now",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        NOW,
        datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2031, 7, 1, 3, 0, tzinfo=timezone(timedelta(hours=-11))),
    ],
)
def test_the_lifetime_window_is_the_one_that_began_at_the_unix_epoch(now: datetime) -> None:
    # Stored counts are keyed by this id: a new value would start every lifetime count over after a deploy.
    window = current_window(LIFETIME, now)

    assert (window.period, window.id, window.start, window.end) == (
        LIFETIME,
        "0",
        datetime(1970, 1, 1, tzinfo=UTC),
        None,
    )
    assert counting_window(LIFETIME, now, "0") == window
    assert not has_ended(LIFETIME, "0", now)


def test_two_instants_two_centuries_apart_share_the_lifetime_window() -> None:
    assert current_window(LIFETIME, datetime(1971, 1, 1, tzinfo=UTC)) == current_window(
        LIFETIME, datetime(2170, 6, 30, 12, tzinfo=UTC)
    )


def usage(
    period: CapacityPeriod, requests: tuple[int, int], tokens: tuple[int, int], resets_at: datetime | None
) -> WindowUsage:
    return WindowUsage(period, requests[0], tokens[0], requests[1], tokens[1], resets_at)


@pytest.mark.parametrize(
    ("requests", "tokens", "remaining"),
    [
        ((4, 5), (999, 1000), (1, 1)),
        ((5, 5), (1000, 1000), (0, 0)),
        # a lowered limit, or a reconcile above the estimate, leaves a window overdrawn
        ((7, 5), (1300, 1000), (0, 0)),
    ],
    ids=["one-left", "full", "overdrawn"],
)
def test_a_full_or_overdrawn_window_has_no_room_left_never_less(
    requests: tuple[int, int], tokens: tuple[int, int], remaining: tuple[int, int]
) -> None:
    window = usage(MINUTE, requests, tokens, NEXT_MINUTE)

    assert (window.requests_remaining, window.tokens_remaining) == remaining


@pytest.mark.parametrize(
    ("requests", "tokens", "remaining"),
    [
        ((4, 5), (999, 1000), ("1", "1")),
        ((5, 5), (1000, 1000), ("0", "0")),
        ((7, 5), (1300, 1000), ("0", "0")),
    ],
    ids=["one-left", "full", "overdrawn"],
)
def test_the_headers_of_a_full_or_overdrawn_window_say_none_remaining(
    requests: tuple[int, int], tokens: tuple[int, int], remaining: tuple[str, str]
) -> None:
    window = usage(MINUTE, requests, tokens, NEXT_MINUTE)

    headers = rate_limit_headers(RateLimits(window, window), NOW)

    assert headers == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": remaining[0],
        "x-ratelimit-reset-requests": "45s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": remaining[1],
        "x-ratelimit-reset-tokens": "45s",
    }


def test_on_a_tie_in_room_and_reset_the_first_window_in_refusal_order_is_picked() -> None:
    # at a week's end the day and the week reset together; both have 5 requests and 50 tokens left
    day = usage(DAY, (5, 10), (50, 100), NEXT_MONDAY)
    week = usage(WEEK, (45, 50), (950, 1000), NEXT_MONDAY)

    picks = {tightest([day, week]) for _ in range(20)}

    # the day, and the day's limits in the headers
    assert picks == {(day, day)}
    assert rate_limit_headers(RateLimits(day, day), WEEKS_END)["x-ratelimit-limit-requests"] == "10"


def test_at_a_weeks_end_a_store_reports_the_day_before_the_week_so_the_day_wins_the_tie() -> None:
    counters = InMemoryCapacityCounters()
    scope = new_scope()
    limits = [WindowLimit(WEEK, 6, 600), WindowLimit(DAY, 6, 600)]

    reservation = counters.reserve(scope, limits, 100, WEEKS_END, uuid4().hex)

    day, week = reservation.usage
    assert (day.period, week.period) == (DAY, WEEK)
    assert day.resets_at == week.resets_at == NEXT_MONDAY
    assert tightest(reservation.usage) == (day, day)
    assert tightest(counters.usage(scope, limits, WEEKS_END)) == (day, day)


def test_with_the_same_reset_the_window_with_less_room_is_picked_whatever_the_order() -> None:
    day = usage(DAY, (5, 10), (60, 100), NEXT_MONDAY)
    week = usage(WEEK, (46, 50), (950, 1000), NEXT_MONDAY)

    assert tightest([day, week]) == tightest([week, day]) == (week, day)


def test_less_room_beats_a_sooner_reset_and_lifetime_loses_only_ties() -> None:
    minute = usage(MINUTE, (1, 10), (0, 1000), NEXT_MINUTE)
    lifetime = usage(LIFETIME, (8, 10), (999, 1000), None)
    lifetime_with_room = usage(LIFETIME, (1, 10), (0, 1000), None)

    assert tightest([minute, lifetime]) == (lifetime, lifetime)
    assert tightest([lifetime_with_room, minute]) == (minute, minute)

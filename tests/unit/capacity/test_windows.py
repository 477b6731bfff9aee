"""Capacity windows: fixed, aligned to UTC, tiling time with no gap or overlap."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmx.capacity.limits import CapacityPeriod
from vmx.capacity.windows import counting_window, current_window, has_ended

BOUNDED = [period for period in CapacityPeriod if period is not CapacityPeriod.LIFETIME]
bounded_periods = st.sampled_from(BOUNDED)
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micros: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)


@given(bounded_periods, instants)
def test_now_lies_in_its_window(period: CapacityPeriod, now: datetime) -> None:
    window = current_window(period, now)

    assert window.end is not None
    assert window.start <= now < window.end
    assert window.period is period
    assert window.id == str(int(window.start.timestamp()))


@given(bounded_periods, instants)
def test_windows_tile_time(period: CapacityPeriod, now: datetime) -> None:
    window = current_window(period, now)
    assert window.end is not None

    following = current_window(period, window.end)
    last_instant = current_window(period, window.end - timedelta(microseconds=1))

    assert following.start == window.end
    assert int(following.id) > int(window.id)
    assert last_instant == window


@given(bounded_periods, instants, offsets)
def test_the_window_does_not_depend_on_the_zone_of_now(
    period: CapacityPeriod, now: datetime, offset: timedelta
) -> None:
    assert current_window(period, now.astimezone(timezone(offset))) == current_window(period, now)


@given(instants)
def test_each_period_starts_on_its_utc_boundary(now: datetime) -> None:
    minute, hour, day, week, month = (current_window(period, now).start for period in BOUNDED)

    assert (minute.second, minute.microsecond) == (0, 0)
    assert (hour.minute, hour.second, hour.microsecond) == (0, 0, 0)
    assert day == utc(now.year, now.month, now.day)
    assert week.weekday() == 0 and week.time() == day.time()
    assert week.isocalendar()[:2] == now.isocalendar()[:2]
    assert month == utc(now.year, now.month, 1)
    assert all(start.tzinfo is UTC for start in (minute, hour, day, week, month))


@given(instants)
def test_a_month_ends_on_the_first_of_the_next(now: datetime) -> None:
    window = current_window(CapacityPeriod.MONTH, now)
    assert window.end is not None

    assert window.end.day == 1
    assert window.end.month == now.month % 12 + 1
    assert 28 <= (window.end - window.start).days <= 31


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (utc(2024, 12, 31, 23, 59, 59, 999999), utc(2024, 12, 1), utc(2025, 1, 1)),
        (utc(2024, 2, 29, 12), utc(2024, 2, 1), utc(2024, 3, 1)),
        (utc(2023, 2, 28, 23, 59), utc(2023, 2, 1), utc(2023, 3, 1)),
        (utc(2000, 2, 29), utc(2000, 2, 1), utc(2000, 3, 1)),
        (utc(2100, 2, 28), utc(2100, 2, 1), utc(2100, 3, 1)),
    ],
)
def test_months_roll_over_the_year_and_follow_leap_years(now: datetime, start: datetime, end: datetime) -> None:
    window = current_window(CapacityPeriod.MONTH, now)

    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("now", "monday"),
    [
        # a Wednesday whose ISO week began in the previous year
        (utc(2025, 1, 1, 9), utc(2024, 12, 30)),
        (utc(2025, 3, 16, 23, 59, 59), utc(2025, 3, 10)),
        (utc(2025, 3, 17), utc(2025, 3, 17)),
    ],
)
def test_weeks_start_on_monday(now: datetime, monday: datetime) -> None:
    window = current_window(CapacityPeriod.WEEK, now)

    assert (window.start, window.end) == (monday, monday + timedelta(weeks=1))


def test_a_day_is_the_utc_day_whatever_the_local_date() -> None:
    early_in_kolkata = datetime(2025, 3, 14, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    assert current_window(CapacityPeriod.DAY, early_in_kolkata).start == utc(2025, 3, 13)


@given(instants)
def test_lifetime_is_one_window_that_never_ends(now: datetime) -> None:
    window = current_window(CapacityPeriod.LIFETIME, now)

    assert window == current_window(CapacityPeriod.LIFETIME, utc(1971, 1, 1))
    assert window.end is None
    assert window.start <= now


def test_now_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        current_window(CapacityPeriod.MINUTE, datetime(2025, 3, 14, 12, 30))


def test_a_request_joins_a_newer_stored_window_rather_than_reopening_its_own() -> None:
    now = utc(2025, 3, 14, 12, 30, 59, 900000)
    newer = current_window(CapacityPeriod.MINUTE, utc(2025, 3, 14, 12, 31))
    older = current_window(CapacityPeriod.MINUTE, utc(2025, 3, 14, 12, 29))

    assert counting_window(CapacityPeriod.MINUTE, now, newer.id) == newer
    assert counting_window(CapacityPeriod.MINUTE, now, older.id) == current_window(CapacityPeriod.MINUTE, now)
    assert counting_window(CapacityPeriod.MINUTE, now, None) == current_window(CapacityPeriod.MINUTE, now)


def test_a_window_has_ended_once_the_next_one_has_begun() -> None:
    window = current_window(CapacityPeriod.HOUR, utc(2025, 3, 14, 12, 30))

    assert not has_ended(CapacityPeriod.HOUR, window.id, utc(2025, 3, 14, 12, 59, 59))
    assert has_ended(CapacityPeriod.HOUR, window.id, utc(2025, 3, 14, 13))
    assert not has_ended(
        CapacityPeriod.LIFETIME, current_window(CapacityPeriod.LIFETIME, window.start).id, utc(2999, 1, 1)
    )

"""The latency histogram, and the UTC hours and days that buckets count."""

import math
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmx.consumers.usage_stats import (
    LATENCY_BOUNDS_MS,
    Granularity,
    approximate_percentile,
    bucket_start,
    latency_bucket,
)


def test_the_bounds_rise_by_a_steady_factor_from_5_ms_to_120_s() -> None:
    ratios = [later / earlier for earlier, later in pairwise(LATENCY_BOUNDS_MS)]

    assert (len(LATENCY_BOUNDS_MS), LATENCY_BOUNDS_MS[0], LATENCY_BOUNDS_MS[-1]) == (24, 5, 120000)
    assert all(1.45 < ratio < 1.65 for ratio in ratios)


@pytest.mark.parametrize(
    ("latency_ms", "bucket"), [(0, 0), (5, 0), (6, 1), (850, 12), (964, 12), (965, 13), (120000, 23), (10**7, 23)]
)
def test_a_latency_falls_in_the_first_bucket_whose_bound_holds_it(latency_ms: int, bucket: int) -> None:
    assert latency_bucket(latency_ms) == bucket


def test_an_empty_histogram_has_no_percentiles() -> None:
    assert approximate_percentile((0,) * len(LATENCY_BOUNDS_MS), 0.5) is None


@given(
    latencies=st.lists(st.integers(min_value=0, max_value=300_000), min_size=1, max_size=300),
    fraction=st.floats(min_value=0.01, max_value=1.0),
)
def test_a_percentile_is_the_bound_of_the_bucket_holding_the_exact_one(latencies: list[int], fraction: float) -> None:
    histogram = [0] * len(LATENCY_BOUNDS_MS)
    for latency in latencies:
        histogram[latency_bucket(latency)] += 1
    exact = sorted(latencies)[max(1, math.ceil(fraction * len(latencies))) - 1]

    assert approximate_percentile(tuple(histogram), fraction) == LATENCY_BOUNDS_MS[latency_bucket(exact)]


@given(
    st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-2)), timezone(timedelta(hours=5, minutes=30))])
    )
)
def test_a_bucket_is_the_utc_hour_or_day_that_holds_the_instant(instant: datetime) -> None:
    hour, day = bucket_start(Granularity.HOUR, instant), bucket_start(Granularity.DAY, instant)

    assert hour.tzinfo == day.tzinfo == UTC
    assert hour <= instant < hour + timedelta(hours=1)
    assert day <= instant < day + timedelta(days=1)
    assert (hour.minute, hour.second, hour.microsecond, day.hour) == (0, 0, 0, 0)

"""Usage statistics: what one completion adds to its hour and its day, and what a bucket shows.

Latency is kept as a histogram with fixed, log-spaced buckets, so buckets add up under concurrent
writers (each completion adds one to one counter) and percentiles can still be approximated on read.
"""

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import accumulate
from typing import Self

from vmx.api_model import ApiModel
from vmx.consumers.inputs import RecordedCompletion

# Upper bounds in milliseconds of the latency buckets, each about 1.55 times the one before, from 5 ms to
# 120 s; the last bucket also holds anything slower. Counters are stored by index: never change these.
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    5, 8, 12, 19, 29, 45, 69, 108, 167, 259, 401, 622,
    964, 1495, 2318, 3594, 5573, 8640, 13396, 20769, 32200, 49922, 77399, 120000,
)  # fmt: skip


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"


def bucket_start(granularity: Granularity, instant: datetime) -> datetime:
    """The start, in UTC, of the hour or day that holds `instant`."""
    hour = instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour if granularity is Granularity.HOUR else hour.replace(hour=0)


def latency_bucket(latency_ms: int) -> int:
    """The index of the first bucket whose bound holds the latency."""
    return min(bisect_left(LATENCY_BOUNDS_MS, latency_ms), len(LATENCY_BOUNDS_MS) - 1)


def approximate_percentile(histogram: tuple[int, ...], fraction: float) -> int | None:
    """The upper bound of the bucket holding the nearest-rank percentile; None for an empty histogram."""
    cumulative = list(accumulate(histogram))
    if not cumulative or cumulative[-1] == 0:
        return None
    rank = max(1, math.ceil(fraction * cumulative[-1]))
    return LATENCY_BOUNDS_MS[bisect_left(cumulative, rank)]


def _no_latencies() -> tuple[int, ...]:
    return (0,) * len(LATENCY_BOUNDS_MS)


@dataclass(frozen=True)
class UsageCounts:
    """A bucket's counters, or what one completion adds to them."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    refused_for_capacity: int = 0
    # completions per latency bucket (LATENCY_BOUNDS_MS)
    latency: tuple[int, ...] = field(default_factory=_no_latencies)

    @classmethod
    def of(cls, completion: RecordedCompletion) -> Self:
        """What one completion adds. A capacity refusal is not an error, and its latency is left out: it
        never reached the provider, and counting it would pull the percentiles down."""
        latency = _no_latencies()
        if not completion.refused_by_capacity:
            index = latency_bucket(completion.latency_ms)
            latency = (*latency[:index], 1, *latency[index + 1 :])
        return cls(
            requests=1,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            errors=int(
                (completion.status >= 400 or completion.error_code is not None) and not completion.refused_by_capacity
            ),
            refused_for_capacity=int(completion.refused_by_capacity),
            latency=latency,
        )


class UsageBucket(ApiModel):
    """One hour or day of a connection's usage. A latency percentile is the upper bound of the histogram
    bucket that holds it (each bound is about 1.55 times the one before), over the requests that
    reached the provider; None when none did."""

    start: datetime
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    errors: int
    refused_for_capacity: int
    latency_p50_ms: int | None
    latency_p95_ms: int | None

    @classmethod
    def of(cls, start: datetime, counts: UsageCounts) -> Self:
        return cls(
            start=start,
            requests=counts.requests,
            prompt_tokens=counts.prompt_tokens,
            completion_tokens=counts.completion_tokens,
            total_tokens=counts.prompt_tokens + counts.completion_tokens,
            errors=counts.errors,
            refused_for_capacity=counts.refused_for_capacity,
            latency_p50_ms=approximate_percentile(counts.latency, 0.50),
            latency_p95_ms=approximate_percentile(counts.latency, 0.95),
        )

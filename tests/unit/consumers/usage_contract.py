"""What every usage statistics store (UsageRecorder and UsageQuery) must do, written once and run against the
in-memory fake (unit tier) and the DynamoDB adapter on moto (functional tier). A subclass supplies `usage` and
`delete_connection` (what removing a deleted connection's remains does, given its id)."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from tests.unit.consumers.events import NOW, completion_detail
from vmx.consumers.inputs import RecordedCompletion
from vmx.consumers.ports import Recorded
from vmx.consumers.usage_stats import Granularity, UsageBucket

HOUR, DAY = Granularity.HOUR, Granularity.DAY
THIS_HOUR = datetime(2025, 3, 14, 12, tzinfo=UTC)
TODAY = datetime(2025, 3, 14, tzinfo=UTC)


class UsageStatistics(Protocol):
    def record(self, completion: RecordedCompletion) -> Recorded: ...

    def series(
        self, connection_id: str, granularity: Granularity, start: datetime, end: datetime
    ) -> list[UsageBucket]: ...


def completion(connection_id: str, **fields: Any) -> RecordedCompletion:
    return RecordedCompletion.model_validate(completion_detail(connection_id, **fields))


def at(instant: datetime) -> str:
    return instant.isoformat()


class UsageStatisticsContract:
    @pytest.fixture
    def connection_id(self) -> str:
        return f"conn-{uuid.uuid4().hex}"

    def only(self, usage: UsageStatistics, connection_id: str, granularity: Granularity) -> UsageBucket:
        (bucket,) = usage.series(connection_id, granularity, NOW - timedelta(days=1), NOW + timedelta(days=1))
        return bucket

    def test_a_completion_counts_in_its_hour_and_its_day(self, usage: UsageStatistics, connection_id: str) -> None:
        counted = usage.record(completion(connection_id, promptTokens=120, completionTokens=30, latencyMs=850))

        hour, day = self.only(usage, connection_id, HOUR), self.only(usage, connection_id, DAY)

        assert counted is Recorded.WRITTEN
        assert hour == UsageBucket(
            start=THIS_HOUR,
            requests=1,
            prompt_tokens=120,
            completion_tokens=30,
            total_tokens=150,
            errors=0,
            refused_for_capacity=0,
            # 850 ms lies in the bucket up to 964 ms
            latency_p50_ms=964,
            latency_p95_ms=964,
        )
        assert day == hour.model_copy(update={"start": TODAY})

    def test_a_redelivered_event_counts_nothing(self, usage: UsageStatistics, connection_id: str) -> None:
        event = completion(connection_id)
        usage.record(event)

        again = usage.record(event)

        assert again is Recorded.ALREADY
        assert self.only(usage, connection_id, HOUR).requests == self.only(usage, connection_id, DAY).requests == 1

    def test_errors_leave_capacity_refusals_out_and_refusals_leave_latency_out(
        self, usage: UsageStatistics, connection_id: str
    ) -> None:
        usage.record(completion(connection_id, status=200, latencyMs=100))
        usage.record(completion(connection_id, status=502, latencyMs=20000, errorCode="provider_error"))
        # the provider's own 429 is an error; ours, from the connection's capacity, is a refusal
        usage.record(completion(connection_id, status=429, latencyMs=300, errorCode="rate_limit_exceeded"))
        usage.record(completion(connection_id, status=429, latencyMs=1, refusedByCapacity=True, promptTokens=0))

        hour = self.only(usage, connection_id, HOUR)

        assert (hour.requests, hour.errors, hour.refused_for_capacity) == (4, 2, 1)
        # the refusal's 1 ms is not among the three latencies (100, 300, 20000 ms)
        assert (hour.latency_p50_ms, hour.latency_p95_ms) == (401, 20769)

    def test_percentiles_come_from_the_latency_histogram(self, usage: UsageStatistics, connection_id: str) -> None:
        for latency in range(1, 101):
            usage.record(completion(connection_id, latencyMs=latency))

        hour = self.only(usage, connection_id, HOUR)

        # the 50th is 50 ms, in the bucket up to 69 ms; the 95th is 95 ms, in the bucket up to 108 ms
        assert (hour.requests, hour.latency_p50_ms, hour.latency_p95_ms) == (100, 69, 108)

    def test_without_a_completion_that_reached_the_provider_there_is_no_latency(
        self, usage: UsageStatistics, connection_id: str
    ) -> None:
        usage.record(completion(connection_id, status=429, refusedByCapacity=True))

        hour = self.only(usage, connection_id, HOUR)

        assert (hour.requests, hour.latency_p50_ms, hour.latency_p95_ms) == (1, None, None)

    def test_buckets_are_utc_hours_and_days(self, usage: UsageStatistics, connection_id: str) -> None:
        # 23:30 at UTC-2 is 01:30 UTC the next day
        usage.record(completion(connection_id, occurredAt="2025-03-14T23:30:00-02:00"))

        assert self.only(usage, connection_id, HOUR).start == datetime(2025, 3, 15, 1, tzinfo=UTC)
        assert self.only(usage, connection_id, DAY).start == datetime(2025, 3, 15, tzinfo=UTC)

    def test_a_series_holds_the_buckets_that_overlap_the_range_oldest_first(
        self, usage: UsageStatistics, connection_id: str
    ) -> None:
        for hour in (9, 12, 10, 11):
            usage.record(completion(connection_id, occurredAt=at(THIS_HOUR.replace(hour=hour, minute=45))))
        usage.record(completion(f"{connection_id}-other", occurredAt=at(THIS_HOUR.replace(hour=11))))

        # from 10:30 (inside the 10:00 bucket) to 12:00 (where the 12:00 bucket starts, so without it)
        hours = usage.series(connection_id, HOUR, THIS_HOUR.replace(hour=10, minute=30), THIS_HOUR)
        days = usage.series(connection_id, DAY, TODAY, TODAY + timedelta(days=1))

        assert [(bucket.start.hour, bucket.requests) for bucket in hours] == [(10, 1), (11, 1)]
        assert [(bucket.start, bucket.requests) for bucket in days] == [(TODAY, 4)]
        assert usage.series(connection_id, DAY, TODAY + timedelta(days=1), TODAY + timedelta(days=2)) == []

    def test_after_the_connection_is_deleted_nothing_is_counted_for_it(
        self, usage: UsageStatistics, connection_id: str, delete_connection: Callable[[str], None]
    ) -> None:
        usage.record(completion(connection_id))
        usage.record(completion(f"{connection_id}-other"))

        delete_connection(connection_id)
        late = usage.record(completion(connection_id))

        assert late is Recorded.CONNECTION_DELETED
        assert usage.series(connection_id, HOUR, NOW - timedelta(days=1), NOW + timedelta(days=1)) == []
        assert usage.series(connection_id, DAY, NOW - timedelta(days=1), NOW + timedelta(days=1)) == []
        assert self.only(usage, f"{connection_id}-other", HOUR).requests == 1

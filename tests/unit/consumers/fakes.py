"""In-memory fakes of the consumers' ports, faithful to `vmx/consumers/ports.py` (the contracts in this
folder run against them and against the DynamoDB adapters)."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vmx.consumers.inputs import ObservedLimit, RecordedCompletion
from vmx.consumers.ports import Recorded
from vmx.consumers.usage_stats import Granularity, UsageBucket, UsageCounts, bucket_start


@dataclass(frozen=True)
class _Observation:
    capacity: tuple[ObservedLimit, ...]
    observed_at: datetime
    source: str


class InMemoryDiscoveredCapacity:
    """`DiscoveredCapacityWriter` in memory; `discovered_capacity` reads back what the connection store shows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observations: dict[tuple[str, str, str, str], _Observation] = {}
        self._deleted: set[tuple[str, str, str]] = set()

    def delete_connection(self, workspace_id: str, environment_id: str, connection_id: str) -> None:
        """What deleting the connection does to its observations."""
        with self._lock:
            self._deleted.add((workspace_id, environment_id, connection_id))
            self._observations = {
                key: stored
                for key, stored in self._observations.items()
                if key[:3] != (workspace_id, environment_id, connection_id)
            }

    def record(
        self,
        workspace_id: str,
        environment_id: str,
        connection_id: str,
        model: str,
        capacity: Sequence[ObservedLimit],
        observed_at: datetime,
        source: str,
    ) -> Recorded:
        key = (workspace_id, environment_id, connection_id, model)
        with self._lock:
            if key[:3] in self._deleted:
                return Recorded.CONNECTION_DELETED
            stored = self._observations.get(key)
            if stored is not None and stored.observed_at >= observed_at:
                return Recorded.ALREADY
            self._observations[key] = _Observation(tuple(capacity), observed_at, source)
            return Recorded.WRITTEN

    def discovered_capacity(self, workspace_id: str, environment_id: str, connection_id: str) -> dict[str, Any] | None:
        models = {
            model: {
                "capacity": [
                    limit.model_dump(mode="json", by_alias=True, exclude_none=True) for limit in stored.capacity
                ],
                "observedAt": stored.observed_at.isoformat(),
                "source": stored.source,
            }
            for (ws, env, connection, model), stored in self._observations.items()
            if (ws, env, connection) == (workspace_id, environment_id, connection_id)
        }
        return {"models": models} if models else None


class InMemoryUsageStatistics:
    """`UsageRecorder` and `UsageQuery` in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counted: set[str] = set()
        self._buckets: dict[tuple[str, Granularity, datetime], UsageCounts] = {}
        self._deleted: set[str] = set()

    def delete_connection(self, connection_id: str) -> None:
        """What removing a deleted connection's remains does to its usage."""
        with self._lock:
            self._deleted.add(connection_id)
            self._buckets = {key: counts for key, counts in self._buckets.items() if key[0] != connection_id}

    def record(self, completion: RecordedCompletion) -> Recorded:
        added = UsageCounts.of(completion)
        with self._lock:
            if completion.event_id in self._counted:
                return Recorded.ALREADY
            if completion.connection_id in self._deleted:
                return Recorded.CONNECTION_DELETED
            self._counted.add(completion.event_id)
            for granularity in Granularity:
                key = (completion.connection_id, granularity, bucket_start(granularity, completion.occurred_at))
                self._buckets[key] = _sum(self._buckets.get(key, UsageCounts()), added)
            return Recorded.WRITTEN

    def series(self, connection_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageBucket]:
        first = bucket_start(granularity, start)
        return [
            UsageBucket.of(bucket, counts)
            for (connection, unit, bucket), counts in sorted(self._buckets.items(), key=lambda item: item[0][2])
            if (connection, unit) == (connection_id, granularity) and first <= bucket < end
        ]


def _sum(one: UsageCounts, other: UsageCounts) -> UsageCounts:
    return UsageCounts(
        requests=one.requests + other.requests,
        prompt_tokens=one.prompt_tokens + other.prompt_tokens,
        completion_tokens=one.completion_tokens + other.completion_tokens,
        errors=one.errors + other.errors,
        refused_for_capacity=one.refused_for_capacity + other.refused_for_capacity,
        latency=tuple(mine + theirs for mine, theirs in zip(one.latency, other.latency, strict=True)),
    )

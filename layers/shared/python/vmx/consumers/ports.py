from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from vmx.consumers.inputs import ObservedLimit, RecordedCompletion
from vmx.consumers.usage_stats import Granularity, UsageBucket


class Recorded(StrEnum):
    """What a consumer's write did with one event."""

    WRITTEN = "written"
    # the same event before, or (for an observation) one at least as recent
    ALREADY = "already"
    # the connection is gone: nothing may be written for it any more
    CONNECTION_DELETED = "connection-deleted"


class DiscoveredCapacityWriter(Protocol):
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
        """Stores what a provider reported for one model of a connection, in one conditional write, unless an
        observation of that model at least as recent is stored (ALREADY) or the connection no longer exists
        (CONNECTION_DELETED). So the same event twice, or an older one after a newer, changes nothing, models
        never overwrite each other, and an observation arriving after the delete leaves nothing behind."""
        ...


class UsageRecorder(Protocol):
    def record(self, completion: RecordedCompletion) -> Recorded:
        """Counts the completion in its hour and its day (UTC), all or nothing, once per event id: ALREADY,
        counting nothing, when the event was counted before (within the dedupe horizon), CONNECTION_DELETED when
        the connection's remains were removed."""
        ...


class UsageQuery(Protocol):
    def series(self, connection_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageBucket]:
        """The connection's buckets of `granularity` that overlap [start, end), oldest first; a bucket without
        completions is absent rather than zero."""
        ...


@dataclass(frozen=True)
class RemovedRemains:
    """How many items a connection's removal deleted, by kind."""

    counters: int
    usage_buckets: int
    discovered: int


class ConnectionRemains(Protocol):
    def remove(self, workspace_id: str, environment_id: str, connection_id: str) -> RemovedRemains:
        """Deletes what a deleted connection leaves behind: its capacity counters, its usage buckets and its
        discovered capacity, and makes sure no usage can be counted for it again. Idempotent: a second call
        removes what was written since, if anything, and nothing else."""
        ...

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from vmx.consumers.inputs import ObservedLimit, RecordedCompletion
from vmx.consumers.usage_stats import Granularity, UsageBucket


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
    ) -> bool:
        """Stores what a provider reported for one model of a connection, in one conditional write, unless an
        observation of that model at least as recent is stored; returns whether it was written. So the same
        event twice, or an older one after a newer, changes nothing, and models never overwrite each other."""
        ...


class UsageRecorder(Protocol):
    def record(self, completion: RecordedCompletion) -> bool:
        """Counts the completion in its hour and its day (UTC), all or nothing, once per event id: returns
        False, counting nothing, when the event was counted before."""
        ...


class UsageQuery(Protocol):
    def series(self, connection_id: str, granularity: Granularity, start: datetime, end: datetime) -> list[UsageBucket]:
        """The connection's buckets of `granularity` that overlap [start, end), oldest first; a bucket without
        completions is absent rather than zero."""
        ...

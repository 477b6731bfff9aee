"""Usage statistics of a connection over a range, in hour or day buckets."""

from vmx.access.policy import Action, Principal, authorize
from vmx.api_model import ApiModel
from vmx.clock import Clock
from vmx.connections.ports import ConnectionRepository
from vmx.consumers.ports import UsageQuery
from vmx.consumers.usage_range import usage_range
from vmx.consumers.usage_stats import Granularity, UsageBucket
from vmx.errors import NotFound
from vmx.use_cases.connections import ConnectionScope


class UsageSeries(ApiModel):
    connection_id: str
    granularity: Granularity
    buckets: list[UsageBucket]


class UsageReporter:
    def __init__(self, connections: ConnectionRepository, usage: UsageQuery, clock: Clock):
        self._connections = connections
        self._usage = usage
        self._clock = clock

    def series(
        self,
        principal: Principal,
        scope: ConnectionScope,
        connection_id: str,
        start: str | None,
        end: str | None,
        granularity: str,
    ) -> UsageSeries:
        """From `start` to `end`, by default the last 24 hours (vmx.consumers.usage_range)."""
        authorize(principal, Action.READ, scope.workspace_id, scope.environment_id)
        requested = usage_range(start, end, granularity, self._clock())
        if self._connections.get(scope.workspace_id, scope.environment_id, connection_id) is None:
            raise NotFound(f"AI connection {connection_id} not found")
        buckets = self._usage.series(connection_id, requested.granularity, requested.start, requested.end)
        return UsageSeries(connection_id=connection_id, granularity=requested.granularity, buckets=buckets)

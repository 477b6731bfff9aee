"""Capacity utilization of a connection: for each configured window, used / limit / remaining / reset."""

from dataclasses import asdict
from datetime import datetime

from vmx.access.policy import Action, Principal, authorize
from vmx.api_model import ApiModel
from vmx.capacity.ledger import CapacityCounters, CounterScope, limits_for
from vmx.capacity.limits import CapacityDimension, CapacityPeriod
from vmx.clock import Clock
from vmx.connections.ports import ConnectionRepository
from vmx.errors import NotFound
from vmx.use_cases.connections import ConnectionScope


class ClassReport(ApiModel):
    """A priority class in one window. Guaranteed, maximum and remaining are null where the window does not limit
    that kind; maximum is the most the class can use in the window: its maximum share, or less where the other
    classes' guarantees leave less."""

    name: str
    requests_used: int
    requests_guaranteed: int | None
    requests_maximum: int | None
    requests_remaining: int | None
    tokens_used: int
    tokens_guaranteed: int | None
    tokens_maximum: int | None
    tokens_remaining: int | None


class WindowReport(ApiModel):
    period: CapacityPeriod
    dimension: CapacityDimension | None
    requests_used: int
    requests_limit: int | None
    requests_remaining: int | None
    tokens_used: int
    tokens_limit: int | None
    tokens_remaining: int | None
    # None for lifetime, which never resets
    resets_at: datetime | None
    # the connection's priority classes, in its own windows; None for per-IP windows and without classes
    classes: list[ClassReport] | None


class CapacityReport(ApiModel):
    connection_id: str
    # per-IP windows are reported for the address that asks
    source_ip: str
    windows: list[WindowReport]


class CapacityReporter:
    def __init__(self, connections: ConnectionRepository, counters: CapacityCounters, clock: Clock):
        self._connections = connections
        self._counters = counters
        self._clock = clock

    def report(
        self, principal: Principal, scope: ConnectionScope, connection_id: str, source_ip: str
    ) -> CapacityReport:
        authorize(principal, Action.READ, scope.workspace_id, scope.environment_id)
        connection = self._connections.get(scope.workspace_id, scope.environment_id, connection_id)
        if connection is None:
            raise NotFound(f"AI connection {connection_id} not found")
        now = self._clock()
        windows = []
        for dimension, ip in ((None, None), (CapacityDimension.SOURCE_IP, source_ip)):
            limits = limits_for(connection.capacity, dimension)
            if not limits:
                continue
            prioritization = connection.prioritization if dimension is None else None
            classes = prioritization.classes if prioritization else []
            for usage in self._counters.usage(CounterScope(connection_id, ip), limits, now, classes):
                windows.append(
                    WindowReport(
                        period=usage.period,
                        dimension=dimension,
                        requests_used=usage.requests_used,
                        requests_limit=usage.requests_limit,
                        requests_remaining=usage.requests_remaining,
                        tokens_used=usage.tokens_used,
                        tokens_limit=usage.tokens_limit,
                        tokens_remaining=usage.tokens_remaining,
                        resets_at=usage.resets_at,
                        classes=[ClassReport(**asdict(each)) for each in usage.classes] if prioritization else None,
                    )
                )
        return CapacityReport(connection_id=connection_id, source_ip=source_ip, windows=windows)

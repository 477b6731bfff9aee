"""What every DiscoveredCapacityWriter must do, written once and run against the in-memory fake (unit tier)
and the DynamoDB adapter on moto (functional tier). A subclass supplies four fixtures: `writer`, `connection`
(the address of a connection to observe), `discovered` (reads back that connection's discovered capacity,
as the connection store shows it) and `delete_connection` (deletes the connection, given its address)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.unit.consumers.events import NOW
from vmx.capacity.limits import CapacityPeriod
from vmx.consumers.inputs import ObservedLimit
from vmx.consumers.ports import DiscoveredCapacityWriter, Recorded

MINUTE_LIMITS = [ObservedLimit(period=CapacityPeriod.MINUTE, requests=500, tokens=30000)]
RAISED_LIMITS = [ObservedLimit(period=CapacityPeriod.MINUTE, requests=5000, tokens=800000)]


@dataclass(frozen=True)
class ConnectionAddress:
    workspace_id: str
    environment_id: str
    connection_id: str


Discovered = Callable[[ConnectionAddress], dict[str, Any] | None]
DeleteConnection = Callable[[ConnectionAddress], None]


def shown(limits: list[ObservedLimit], observed_at: str, source: str = "response-headers") -> dict[str, Any]:
    capacity = [limit.model_dump(mode="json", by_alias=True, exclude_none=True) for limit in limits]
    return {"capacity": capacity, "observedAt": observed_at, "source": source}


class DiscoveredCapacityWriterContract:
    def record(
        self,
        writer: DiscoveredCapacityWriter,
        at: ConnectionAddress,
        model: str,
        limits: list[ObservedLimit],
        seconds: int = 0,
        source: str = "response-headers",
    ) -> Recorded:
        observed_at = NOW + timedelta(seconds=seconds)
        return writer.record(at.workspace_id, at.environment_id, at.connection_id, model, limits, observed_at, source)

    def test_nothing_is_discovered_before_an_observation(
        self, connection: ConnectionAddress, discovered: Discovered
    ) -> None:
        assert discovered(connection) is None

    def test_an_observation_is_shown_by_model(
        self, writer: DiscoveredCapacityWriter, connection: ConnectionAddress, discovered: Discovered
    ) -> None:
        limits = [
            ObservedLimit(
                period=CapacityPeriod.MINUTE, requests=50, tokens=None, input_tokens=40000, output_tokens=8000
            ),
            ObservedLimit(period=CapacityPeriod.DAY, requests=None, tokens=10**6),
        ]

        written = self.record(writer, connection, "claude-sonnet-4", limits, source="service-quotas")

        assert written is Recorded.WRITTEN
        assert discovered(connection) == {
            "models": {
                "claude-sonnet-4": {
                    "capacity": [
                        {"period": "minute", "requests": 50, "inputTokens": 40000, "outputTokens": 8000},
                        {"period": "day", "tokens": 1000000},
                    ],
                    "observedAt": "2025-03-14T12:30:15+00:00",
                    "source": "service-quotas",
                }
            }
        }

    def test_the_same_observation_twice_changes_nothing(
        self, writer: DiscoveredCapacityWriter, connection: ConnectionAddress, discovered: Discovered
    ) -> None:
        self.record(writer, connection, "gpt-4o", MINUTE_LIMITS)

        again = self.record(writer, connection, "gpt-4o", MINUTE_LIMITS)
        # even with other limits: an instant already recorded is never recorded again
        same_instant = self.record(writer, connection, "gpt-4o", RAISED_LIMITS)

        assert (again, same_instant) == (Recorded.ALREADY, Recorded.ALREADY)
        assert discovered(connection) == {"models": {"gpt-4o": shown(MINUTE_LIMITS, "2025-03-14T12:30:15+00:00")}}

    def test_an_older_observation_never_replaces_a_newer_one(
        self, writer: DiscoveredCapacityWriter, connection: ConnectionAddress, discovered: Discovered
    ) -> None:
        self.record(writer, connection, "gpt-4o", RAISED_LIMITS, seconds=60)

        older = self.record(writer, connection, "gpt-4o", MINUTE_LIMITS, seconds=0)

        assert older is Recorded.ALREADY
        assert discovered(connection) == {"models": {"gpt-4o": shown(RAISED_LIMITS, "2025-03-14T12:31:15+00:00")}}

    def test_a_newer_observation_replaces_an_older_one(
        self, writer: DiscoveredCapacityWriter, connection: ConnectionAddress, discovered: Discovered
    ) -> None:
        self.record(writer, connection, "gpt-4o", MINUTE_LIMITS, seconds=0)

        newer = self.record(writer, connection, "gpt-4o", RAISED_LIMITS, seconds=1)

        assert newer is Recorded.WRITTEN
        assert discovered(connection) == {"models": {"gpt-4o": shown(RAISED_LIMITS, "2025-03-14T12:30:16+00:00")}}

    def test_models_never_overwrite_each_other(
        self, writer: DiscoveredCapacityWriter, connection: ConnectionAddress, discovered: Discovered
    ) -> None:
        self.record(writer, connection, "gpt-4o", MINUTE_LIMITS, seconds=5)
        # older than gpt-4o's: each model keeps its own newest
        self.record(writer, connection, "gpt-4o-mini", RAISED_LIMITS, seconds=0)

        assert discovered(connection) == {
            "models": {
                "gpt-4o": shown(MINUTE_LIMITS, "2025-03-14T12:30:20+00:00"),
                "gpt-4o-mini": shown(RAISED_LIMITS, "2025-03-14T12:30:15+00:00"),
            }
        }

    def test_an_observation_after_the_connection_is_deleted_writes_nothing(
        self,
        writer: DiscoveredCapacityWriter,
        connection: ConnectionAddress,
        delete_connection: DeleteConnection,
        discovered_after_delete: Callable[[ConnectionAddress], list[str]],
    ) -> None:
        self.record(writer, connection, "gpt-4o", MINUTE_LIMITS)
        delete_connection(connection)

        late = self.record(writer, connection, "gpt-4o", RAISED_LIMITS, seconds=60)
        other_model = self.record(writer, connection, "gpt-4o-mini", RAISED_LIMITS, seconds=60)

        assert (late, other_model) == (Recorded.CONNECTION_DELETED, Recorded.CONNECTION_DELETED)
        assert discovered_after_delete(connection) == []

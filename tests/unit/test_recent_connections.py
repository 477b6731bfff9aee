"""Connections looked up by name, kept in memory for a few seconds."""

import pytest

from tests.unit.builders import connection_record
from vmx.connections.models import Connection
from vmx.fields import name_key
from vmx.use_cases.recent_connections import RecentConnections

TTL_SECONDS = 5.0


class CountingConnections:
    """A lookup by name (case-insensitive, as the repository's) that records every name it is asked for."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str, str], Connection] = {}
        self.asked: list[str] = []

    def put(self, connection: Connection) -> None:
        self.stored[(connection.workspace_id, connection.environment_id, name_key(connection.name))] = connection

    def remove(self, connection: Connection) -> None:
        del self.stored[(connection.workspace_id, connection.environment_id, name_key(connection.name))]

    def get_by_name(self, workspace_id: str, environment_id: str, name: str) -> Connection | None:
        self.asked.append(name)
        return self.stored.get((workspace_id, environment_id, name_key(name)))

    def list_all(self, workspace_id: str, environment_id: str) -> list[Connection]:
        return [
            connection
            for (ws, env, _), connection in self.stored.items()
            if (ws, env) == (workspace_id, environment_id)
        ]


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def source() -> CountingConnections:
    return CountingConnections()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def recent(source: CountingConnections, clock: ManualClock) -> RecentConnections:
    return RecentConnections(source, TTL_SECONDS, monotonic=clock)


def test_a_connection_read_a_moment_ago_is_served_from_memory(
    recent: RecentConnections, source: CountingConnections, clock: ManualClock
) -> None:
    prod = connection_record(name="prod")
    source.put(prod)

    first = recent.get_by_name("ws", "env", "prod")
    clock.now += TTL_SECONDS - 0.01
    again = recent.get_by_name("ws", "env", "prod")

    assert first == again == prod
    assert source.asked == ["prod"]


def test_once_the_ttl_has_passed_the_connection_is_read_again_and_changes_are_seen(
    recent: RecentConnections, source: CountingConnections, clock: ManualClock
) -> None:
    prod = connection_record(name="prod", version=1)
    source.put(prod)
    recent.get_by_name("ws", "env", "prod")
    source.put(prod.model_copy(update={"version": 2}))

    clock.now += TTL_SECONDS
    edited = recent.get_by_name("ws", "env", "prod")

    assert edited is not None and edited.version == 2
    assert source.asked == ["prod", "prod"]


def test_a_deleted_connection_is_gone_once_the_ttl_has_passed(
    recent: RecentConnections, source: CountingConnections, clock: ManualClock
) -> None:
    prod = connection_record(name="prod")
    source.put(prod)
    recent.get_by_name("ws", "env", "prod")
    source.remove(prod)

    clock.now += TTL_SECONDS

    assert recent.get_by_name("ws", "env", "prod") is None


def test_a_connection_that_does_not_exist_is_not_kept_so_one_created_next_is_found_at_once(
    recent: RecentConnections, source: CountingConnections
) -> None:
    assert recent.get_by_name("ws", "env", "prod") is None
    prod = connection_record(name="prod")
    source.put(prod)

    assert recent.get_by_name("ws", "env", "prod") == prod
    assert source.asked == ["prod", "prod"]


def test_names_are_kept_case_insensitively_and_per_environment(
    recent: RecentConnections, source: CountingConnections
) -> None:
    prod = connection_record(name="Prod")
    staging_prod = connection_record(name="prod", environment_id="staging")
    source.put(prod)
    source.put(staging_prod)

    assert recent.get_by_name("ws", "env", "Prod") == prod
    assert recent.get_by_name("ws", "env", "PROD") == prod
    assert recent.get_by_name("ws", "env", "prod") == prod
    assert recent.get_by_name("ws", "staging", "prod") == staging_prod
    assert source.asked == ["Prod", "prod"]

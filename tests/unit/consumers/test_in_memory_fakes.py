"""The fakes keep the ports' contracts, so use-case tests that run on them say something about production."""

import uuid
from collections.abc import Callable

import pytest

from tests.unit.consumers.discovered_contract import (
    ConnectionAddress,
    DeleteConnection,
    Discovered,
    DiscoveredCapacityWriterContract,
)
from tests.unit.consumers.fakes import InMemoryDiscoveredCapacity, InMemoryUsageStatistics
from tests.unit.consumers.usage_contract import UsageStatisticsContract


class TestInMemoryDiscoveredCapacity(DiscoveredCapacityWriterContract):
    @pytest.fixture
    def writer(self) -> InMemoryDiscoveredCapacity:
        return InMemoryDiscoveredCapacity()

    @pytest.fixture
    def connection(self) -> ConnectionAddress:
        return ConnectionAddress("ws-1", "env-1", f"conn-{uuid.uuid4().hex}")

    @pytest.fixture
    def discovered(self, writer: InMemoryDiscoveredCapacity) -> Discovered:
        return lambda at: writer.discovered_capacity(at.workspace_id, at.environment_id, at.connection_id)

    @pytest.fixture
    def delete_connection(self, writer: InMemoryDiscoveredCapacity) -> DeleteConnection:
        return lambda at: writer.delete_connection(at.workspace_id, at.environment_id, at.connection_id)

    @pytest.fixture
    def discovered_after_delete(self, writer: InMemoryDiscoveredCapacity) -> Callable[[ConnectionAddress], list[str]]:
        def models(at: ConnectionAddress) -> list[str]:
            shown = writer.discovered_capacity(at.workspace_id, at.environment_id, at.connection_id)
            return sorted(shown["models"]) if shown else []

        return models


class TestInMemoryUsageStatistics(UsageStatisticsContract):
    @pytest.fixture
    def usage(self) -> InMemoryUsageStatistics:
        return InMemoryUsageStatistics()

    @pytest.fixture
    def delete_connection(self, usage: InMemoryUsageStatistics) -> Callable[[str], None]:
        return usage.delete_connection

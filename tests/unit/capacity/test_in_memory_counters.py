"""The in-memory fake holds to the same contract as the DynamoDB adapter, so unit tests may trust it."""

import pytest

from tests.capacity_fakes import InMemoryCapacityCounters
from tests.unit.capacity.counters_contract import CapacityCountersContract
from tests.unit.capacity.priority_contract import PriorityClassesContract


class TestInMemoryCapacityCounters(CapacityCountersContract):
    @pytest.fixture
    def counters(self) -> InMemoryCapacityCounters:
        return InMemoryCapacityCounters()


class TestInMemoryPriorityClasses(PriorityClassesContract):
    @pytest.fixture
    def counters(self) -> InMemoryCapacityCounters:
        return InMemoryCapacityCounters()

"""The DynamoDB adapter: the shared contract, what it costs in DynamoDB calls, and what it stores."""

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from tests.unit.capacity.counters_contract import NEXT_MINUTE, NOW, CapacityCountersContract, new_scope
from tests.unit.capacity.priority_contract import PriorityClassesContract
from vmx.capacity.ledger import CapacityExceeded, CounterScope, WindowLimit
from vmx.capacity.limits import CapacityPeriod
from vmx.storage.capacity_store import DynamoCapacityCounters
from vmx.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MINUTE, HOUR, DAY, LIFETIME = CapacityPeriod.MINUTE, CapacityPeriod.HOUR, CapacityPeriod.DAY, CapacityPeriod.LIFETIME
EVERY_PERIOD = [WindowLimit(period, 1000, 10**6) for period in CapacityPeriod]
UPDATE, GET = "UpdateItem", "GetItem"


class TestDynamoCapacityCounters(CapacityCountersContract):
    """The contract's `counters` fixture comes from this folder's conftest."""


def calls_of(dynamodb_calls: list[str], action: Any) -> list[str]:
    dynamodb_calls.clear()
    action()
    return list(dynamodb_calls)


def test_the_steady_state_costs_one_write_to_reserve_and_one_to_settle(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    counters.reserve(scope, EVERY_PERIOD, 100, NOW, uuid4().hex)

    reservations = []
    reserve = calls_of(
        dynamodb_calls, lambda: reservations.append(counters.reserve(scope, EVERY_PERIOD, 100, NOW, uuid4().hex))
    )
    reconcile = calls_of(dynamodb_calls, lambda: counters.reconcile(reservations[0], 40, NOW))
    # settled already: each is one write whose condition fails, and changes nothing
    again = calls_of(dynamodb_calls, lambda: counters.reconcile(reservations[0], 100, NOW))
    release = calls_of(dynamodb_calls, lambda: counters.release(reservations[0]))
    usage = calls_of(dynamodb_calls, lambda: counters.usage(scope, EVERY_PERIOD, NOW))

    assert (reserve, reconcile, again, release, usage) == ([UPDATE], [UPDATE], [UPDATE], [UPDATE], [GET])
    assert {(window.requests_used, window.tokens_used) for window in counters.usage(scope, EVERY_PERIOD, NOW)} == {
        (2, 140)
    }


def test_the_first_request_and_a_rollover_cost_two_writes(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()

    first = calls_of(dynamodb_calls, lambda: counters.reserve(scope, EVERY_PERIOD, 100, NOW, uuid4().hex))
    # minute, hour and day roll over together at midnight
    midnight = calls_of(
        dynamodb_calls,
        lambda: counters.reserve(scope, EVERY_PERIOD, 100, datetime(2025, 3, 15, tzinfo=UTC), uuid4().hex),
    )

    assert first == midnight == [UPDATE, UPDATE]


def test_a_refusal_costs_the_failed_write_alone_and_an_impossible_request_nothing(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    limits = [WindowLimit(MINUTE, 1, 100)]
    counters.reserve(scope, limits, 0, NOW, uuid4().hex)

    def refused(tokens: int) -> None:
        with pytest.raises(CapacityExceeded):
            counters.reserve(scope, limits, tokens, NOW, uuid4().hex)

    assert calls_of(dynamodb_calls, lambda: refused(0)) == [UPDATE]
    assert calls_of(dynamodb_calls, lambda: refused(101)) == []


def test_a_reconcile_after_the_minute_rolled_over_skips_it_without_a_failed_write(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    reservation = counters.reserve(
        scope, [WindowLimit(MINUTE, 5, 500), WindowLimit(HOUR, 50, 5000)], 100, NOW, uuid4().hex
    )
    minute_only = counters.reserve(new_scope(), [WindowLimit(MINUTE, 5, 500)], 100, NOW, uuid4().hex)

    assert calls_of(dynamodb_calls, lambda: counters.reconcile(reservation, 10, NEXT_MINUTE)) == [UPDATE]
    # nothing left to count in: the one write only settles the reservation
    assert calls_of(dynamodb_calls, lambda: counters.reconcile(minute_only, 10, NEXT_MINUTE)) == [UPDATE]


def test_a_release_after_some_windows_rolled_over_retries_with_the_rest(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    limits = [WindowLimit(MINUTE, 5, None), WindowLimit(HOUR, 50, None)]
    reservation = counters.reserve(scope, limits, 0, NOW, uuid4().hex)
    counters.reserve(scope, limits, 0, NEXT_MINUTE, uuid4().hex)

    assert calls_of(dynamodb_calls, lambda: counters.release(reservation)) == [UPDATE, UPDATE]
    assert [usage.requests_used for usage in counters.usage(scope, limits, NEXT_MINUTE)] == [1, 1]


def stored(capacity_table: str, scope: CounterScope) -> dict[str, Any]:
    sort_key = "GLOBAL" if scope.source_ip is None else f"IP#{scope.source_ip}"
    key = {"pk": f"CAP#{scope.connection_id}", "sk": sort_key}
    item: dict[str, Any] = (
        boto3.resource("dynamodb").Table(capacity_table).get_item(Key=key, ConsistentRead=True)["Item"]
    )
    return item


def test_one_item_per_scope_holds_every_window(counters: DynamoCapacityCounters, capacity_table: str) -> None:
    scope = new_scope()
    request_id = uuid4().hex
    reservation = counters.reserve(
        scope, [WindowLimit(MINUTE, 5, None), WindowLimit(DAY, None, 5000)], 70, NOW, request_id
    )
    in_flight = stored(capacity_table, scope)
    counters.reconcile(reservation, 70, NOW)

    item = stored(capacity_table, scope)

    assert in_flight == {**item, f"q_{request_id}": int(NOW.timestamp())}

    assert item == {
        "pk": f"CAP#{scope.connection_id}",
        "sk": "GLOBAL",
        "minute_w": str(int(datetime(2025, 3, 14, 12, 30, tzinfo=UTC).timestamp())),
        "minute_r": 1,
        "minute_t": 70,
        "day_w": str(int(datetime(2025, 3, 14, tzinfo=UTC).timestamp())),
        "day_r": 1,
        "day_t": 70,
    }


def test_a_client_ip_item_expires_when_its_last_window_ends(
    counters: DynamoCapacityCounters, capacity_table: str
) -> None:
    scope = new_scope("203.0.113.7")
    counters.reserve(scope, [WindowLimit(MINUTE, 5, None), WindowLimit(DAY, 50, None)], 0, NOW, uuid4().hex)
    expires_with_the_day = stored(capacity_table, scope)["expiresAt"]

    counters.reserve(scope, [WindowLimit(MINUTE, 5, None), WindowLimit(LIFETIME, 50, None)], 0, NOW, uuid4().hex)
    lifetime = stored(capacity_table, scope)

    assert expires_with_the_day == int(datetime(2025, 3, 15, tzinfo=UTC).timestamp())
    assert "expiresAt" not in lifetime


def failing_client(operation: str, code: str, status: int) -> "DynamoDBClient":
    client = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
    stubber = Stubber(client)
    stubber.add_client_error(operation, service_error_code=code, http_status_code=status)
    stubber.activate()
    return client


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ValidationException"])
def test_a_failed_write_becomes_storage_unavailable(code: str) -> None:
    counters = DynamoCapacityCounters("capacity", "us-east-1", client=failing_client("update_item", code, 400))

    with pytest.raises(StorageUnavailable, match=code):
        counters.reserve(new_scope(), [WindowLimit(MINUTE, 5, None)], 0, NOW, uuid4().hex)


def test_a_failed_read_becomes_storage_unavailable() -> None:
    counters = DynamoCapacityCounters(
        "capacity", "us-east-1", client=failing_client("get_item", "InternalServerError", 500)
    )

    with pytest.raises(StorageUnavailable, match="InternalServerError"):
        counters.usage(new_scope(), [WindowLimit(MINUTE, 5, None)], NOW)


def test_an_unreachable_endpoint_becomes_storage_unavailable(
    counters: DynamoCapacityCounters, dynamodb: "DynamoDBClient"
) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    dynamodb.meta.events.register_first("before-send.dynamodb", unreachable)

    with pytest.raises(StorageUnavailable, match="EndpointConnectionError"):
        counters.reserve(new_scope(), [WindowLimit(MINUTE, 5, None)], 0, NOW, uuid4().hex)


class TestDynamoPriorityClasses(PriorityClassesContract):
    """The same rules for classes on moto, where each part's bound is a condition of the one write."""

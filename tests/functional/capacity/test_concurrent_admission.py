"""Many instances admitting at once: never one request over the limit.

moto applies a conditional write in several Python steps without a lock, where DynamoDB applies each one
atomically, so every client here sends its calls through one lock. That serialises the calls alone, as
DynamoDB serialises writes to one item; what each instance plans from what it saw, and the order its
writes arrive in, stay as racy as in AWS, so the conditions inside the writes are what keep the limit.
"""

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from uuid import uuid4

import boto3
import pytest

from tests.unit.capacity.counters_contract import NOW, new_scope
from vmx.capacity.ledger import CapacityExceeded, Reservation, WindowLimit
from vmx.capacity.limits import CapacityPeriod
from vmx.storage.capacity_store import DynamoCapacityCounters

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MINUTE, HOUR = CapacityPeriod.MINUTE, CapacityPeriod.HOUR


class OneCallAtATime:
    """A DynamoDB client whose calls take turns with every other client sharing `turn`."""

    def __init__(self, client: "DynamoDBClient", turn: threading.Lock):
        self._client = client
        self._turn = turn

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        call = getattr(self._client, operation)

        def in_turn(**kwargs: Any) -> Any:
            with self._turn:
                return call(**kwargs)

        return in_turn


class HeldBeforeSecondWrite(OneCallAtATime):
    """Holds its second UpdateItem until every racer has reached theirs: all have seen the item, none has
    written what they planned from it."""

    def __init__(self, client: "DynamoDBClient", turn: threading.Lock, lined_up: threading.Barrier):
        super().__init__(client, turn)
        self._lined_up = lined_up
        self.updates = 0

    def update_item(self, **kwargs: Any) -> Any:
        self.updates += 1
        if self.updates == 2:
            self._lined_up.wait(timeout=10)
        return self.__getattr__("update_item")(**kwargs)


def instance(capacity_table: str, client: OneCallAtATime) -> DynamoCapacityCounters:
    """One Lambda instance's adapter, with a client of its own."""
    return DynamoCapacityCounters(capacity_table, os.environ["AWS_REGION"], client=cast("DynamoDBClient", client))


def race(racers: int, attempt: Callable[[int], object]) -> list[object]:
    outcomes: list[object] = [None] * racers

    def run(index: int) -> None:
        try:
            outcomes[index] = attempt(index)
        except Exception as exc:  # noqa: BLE001 - each racer's outcome is what the test checks
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def new_client() -> "DynamoDBClient":
    return boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])


def test_sixteen_instances_admit_exactly_the_limit(capacity_table: str) -> None:
    limits = [WindowLimit(MINUTE, 20, None), WindowLimit(HOUR, None, 10**6)]
    scope = new_scope()
    turn = threading.Lock()
    instances = [instance(capacity_table, OneCallAtATime(new_client(), turn)) for _ in range(16)]

    def five_requests(index: int) -> list[object]:
        outcomes: list[object] = []
        for _ in range(5):
            try:
                outcomes.append(instances[index].reserve(scope, limits, 7, NOW, uuid4().hex))
            except CapacityExceeded as refused:
                outcomes.append(refused)
        return outcomes

    outcomes = [outcome for racer in race(16, five_requests) for outcome in cast(list[object], racer)]

    admitted = [outcome for outcome in outcomes if isinstance(outcome, Reservation)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, CapacityExceeded)]
    assert (len(admitted), len(refused)) == (20, 60)
    assert {(refusal.period, refusal.limit_kind) for refusal in refused} == {(MINUTE, "requests")}
    minute, hour = instances[0].usage(scope, limits, NOW)
    assert (minute.requests_used, hour.tokens_used) == (20, 20 * 7)


@pytest.mark.parametrize(("limit", "admitted"), [(1, 1), (2, 2)])
def test_instances_that_all_saw_a_stale_window_reset_it_once(capacity_table: str, limit: int, admitted: int) -> None:
    """Both racers' first write fails on a window that rolled over, and both plan to reset it. The reset
    is conditional on the stale window still being there, so the second one fails and re-plans from the
    window the first opened: it is refused when that is full and adds to it otherwise."""
    limits = [WindowLimit(MINUTE, limit, None)]
    scope = new_scope()
    instance(capacity_table, OneCallAtATime(new_client(), threading.Lock())).reserve(
        scope, limits, 0, NOW.replace(minute=29), uuid4().hex
    )
    turn, lined_up = threading.Lock(), threading.Barrier(2)
    racers = [HeldBeforeSecondWrite(new_client(), turn, lined_up) for _ in range(2)]

    def reserve(index: int) -> object:
        return instance(capacity_table, racers[index]).reserve(scope, limits, 0, NOW, uuid4().hex)

    outcomes = race(2, reserve)

    assert sum(isinstance(outcome, Reservation) for outcome in outcomes) == admitted
    assert all(isinstance(outcome, Reservation | CapacityExceeded) for outcome in outcomes)
    counters = instance(capacity_table, OneCallAtATime(new_client(), threading.Lock()))
    assert counters.usage(scope, limits, NOW)[0].requests_used == admitted

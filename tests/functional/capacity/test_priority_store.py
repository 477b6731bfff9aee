"""The DynamoDB counters with priority classes: writes per reservation, answers lost, several instances, and
what the item holds after a window rolls over."""

import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.capacity.counters_contract import NOW, new_scope
from vmx.capacity.ledger import CapacityExceeded, CounterScope, Priority, WindowLimit
from vmx.capacity.limits import MAX_PRIORITY_CLASSES, CapacityPeriod, PriorityClass
from vmx.storage.capacity_store import DynamoCapacityCounters

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MINUTE, HOUR = CapacityPeriod.MINUTE, CapacityPeriod.HOUR
CLASSES = (PriorityClass(name="production", guaranteed_percent=60), PriorityClass(name="batch", maximum_percent=40))
PRODUCTION, BATCH = Priority(CLASSES, "production"), Priority(CLASSES, "batch")
LIMITS = [WindowLimit(MINUTE, 10, 1000)]


def item_of(table: str, scope: CounterScope) -> dict[str, Any]:
    key = {"pk": {"S": f"CAP#{scope.connection_id}"}, "sk": {"S": "GLOBAL"}}
    item: dict[str, Any] = boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    return item


def class_counts(counters: DynamoCapacityCounters, scope: CounterScope) -> list[tuple[int, int]]:
    [window] = counters.usage(scope, LIMITS, NOW, CLASSES)
    return [(usage.requests_used, usage.tokens_used) for usage in window.classes]


def test_a_class_reservation_costs_one_write_while_the_instance_sees_the_item_as_it_is(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    counters.reserve(scope, LIMITS, 100, NOW, uuid4().hex, PRODUCTION)
    dynamodb_calls.clear()

    for _ in range(5):
        counters.reserve(scope, LIMITS, 100, NOW, uuid4().hex, PRODUCTION)

    assert dynamodb_calls == ["UpdateItem"] * 5


def test_another_instance_made_the_split_stale_one_more_write_and_no_wrong_refusal(
    capacity_table: str, dynamodb: "DynamoDBClient", dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    first, second = (DynamoCapacityCounters(capacity_table, os.environ["AWS_REGION"], client=dynamodb) for _ in "12")
    first.reserve(scope, LIMITS, 0, NOW, uuid4().hex, PRODUCTION)
    # the other instance fills production's guarantee (6): the first still thinks 5 are left in it
    for _ in range(5):
        second.reserve(scope, LIMITS, 0, NOW, uuid4().hex, PRODUCTION)
    dynamodb_calls.clear()

    reservation = first.reserve(scope, LIMITS, 0, NOW, uuid4().hex, PRODUCTION)

    assert dynamodb_calls == ["UpdateItem", "UpdateItem"]
    # counted in the shared part, as the item showed the guarantee full
    assert reservation.splits[MINUTE].guaranteed_requests == 0


def test_the_write_that_rolls_a_window_over_removes_the_old_windows_class_counts(
    capacity_table: str, counters: DynamoCapacityCounters
) -> None:
    scope = new_scope()
    limits = [WindowLimit(MINUTE, 10, 1000), WindowLimit(HOUR, 100, None)]
    counters.reserve(scope, limits, 100, NOW, uuid4().hex, BATCH)
    counters.reserve(scope, limits, 100, NOW, uuid4().hex, PRODUCTION)

    counters.reserve(scope, limits, 50, NOW + timedelta(minutes=1), uuid4().hex, BATCH)

    counts = {name for name in item_of(capacity_table, scope) if name.startswith(("minute_", "hour_"))}
    minute = str(int((NOW + timedelta(minutes=1)).replace(second=0).timestamp()))
    hour = str(int(NOW.replace(minute=0, second=0).timestamp()))
    assert {name for name in counts if name.startswith("minute_") and minute not in name} == {
        "minute_w",
        "minute_r",
        "minute_t",
    }
    assert f"hour_cr_{hour}_production" in counts


def test_every_clause_of_the_widest_reservation_fits_dynamodbs_expression_limit(
    counters: DynamoCapacityCounters, dynamodb: "DynamoDBClient"
) -> None:
    expressions: list[int] = []

    def measure(params: dict[str, Any], **_: Any) -> None:
        expressions.extend(len(params[name]) for name in ("UpdateExpression", "ConditionExpression"))

    dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", measure)
    classes = tuple(
        PriorityClass(name=f"class-with-a-long-name-{index:02d}", guaranteed_percent=10)
        for index in range(MAX_PRIORITY_CLASSES)
    )
    limits = [WindowLimit(period, 10**9, 10**12) for period in CapacityPeriod]

    counters.reserve(new_scope(), limits, 10**6, NOW, uuid4().hex, Priority(classes, classes[-1].name))

    assert max(expressions) < 4096


STEPS = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.sampled_from(["production", "batch"]), st.integers(0, 300), st.booleans()),
    max_size=25,
)


def test_instances_with_views_of_their_own_never_pass_a_bound(capacity_table: str, dynamodb: "DynamoDBClient") -> None:
    """Two instances, each splitting by what it last saw, reserve and release at random: whatever the split,
    batch never passes its 40 %, the shared part never passes what production is not guaranteed, and
    production is refused by its share only when its guarantee is used up."""

    # @given inside: the examples share the table (each takes a scope of its own)
    @settings(max_examples=25, deadline=None)
    @given(steps=STEPS)
    def bounded(steps: list[tuple[int, str, int, bool]]) -> None:
        scope = new_scope()
        instances = [DynamoCapacityCounters(capacity_table, os.environ["AWS_REGION"], client=dynamodb) for _ in "12"]
        held = []
        for instance, name, tokens, release in steps:
            try:
                held.append(
                    instances[instance].reserve(scope, LIMITS, tokens, NOW, uuid4().hex, Priority(CLASSES, name))
                )
            except CapacityExceeded as refused:
                if name == "production" and refused.share == "shared":
                    [window] = instances[0].usage(scope, LIMITS, NOW, CLASSES)
                    production = window.classes[0]
                    assert production.requests_used >= 6 or production.tokens_used + tokens > 600
            if release and held:
                instances[1 - instance].release(held.pop(0))
            [window] = instances[0].usage(scope, LIMITS, NOW, CLASSES)
            batch = window.classes[1]
            item = item_of(capacity_table, scope)
            shared = {name[:9]: int(value["N"]) for name, value in item.items() if name.startswith("minute_s")}
            assert batch.requests_used <= 4 and batch.tokens_used <= 400
            assert shared.get("minute_sr", 0) <= 4 and shared.get("minute_st", 0) <= 400
            assert window.requests_used <= 10 and window.tokens_used <= 1000

    bounded()

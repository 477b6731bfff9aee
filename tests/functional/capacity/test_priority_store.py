"""The DynamoDB counters with priority classes: writes per reservation, answers lost, several instances, and
what the item holds after a window rolls over."""

import os
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.capacity.counters_contract import NOW, new_scope
from vmx.capacity.ledger import CapacityExceeded, CounterScope, Priority, WindowLimit, WindowState, split_of
from vmx.capacity.limits import MAX_PRIORITY_CLASSES, CapacityPeriod, PriorityClass
from vmx.capacity.windows import current_window
from vmx.storage.capacity_store import DynamoCapacityCounters, _ClassCountName, _reservation

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


def test_the_widest_reservation_fits_dynamodbs_expression_limits() -> None:
    """Every period rolling over at once, ten classes with the longest names, and every old count to remove:
    each expression stays under 4 KB and 300 operators and functions (moto does not check either)."""
    classes = tuple(
        PriorityClass(name=f"class-{index}-" + "x" * 24, guaranteed_percent=5, maximum_percent=100)
        for index in range(MAX_PRIORITY_CLASSES)
    )
    limits = [WindowLimit(period, 10**9, 10**12) for period in CapacityPeriod]
    old = {period: str(int(current_window(period, NOW).id) - 1) for period in CapacityPeriod}
    states = [
        WindowState(
            current_window(limit.period, NOW),
            0,
            0,
            old[limit.period] if limit.period is not CapacityPeriod.LIFETIME else None,
        )
        for limit in limits
    ]
    leftovers = [
        _ClassCountName(f"{period}_{kind}{unit}_{old[period]}_{name.name}", period, kind, unit, old[period], name.name)
        for period in CapacityPeriod
        for kind in "cg"
        for unit in "rt"
        for name in classes
    ]
    priority = Priority(classes, classes[-1].name)
    splits = {
        limit.period: split_of(limit, state, 10**6, priority) for limit, state in zip(limits, states, strict=True)
    }

    update = _reservation(new_scope(), limits, states, 10**6, priority, splits, leftovers)

    for expression in (update.expression(), " AND ".join(update.conditions)):
        assert len(expression) < 4096
        assert len(re.findall(r"\bAND\b|\bOR\b|\bNOT\b|<=|>=|<>|(?<![<>])=|\w+\(", expression)) < 300
    assert len(update.names) + len(update.values) < 1000


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

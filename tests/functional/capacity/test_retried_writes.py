"""The DynamoDB counters under writes sent more than once, items that keep changing, and what they read.

A write that DynamoDB applied but whose answer was lost is made here as in AWS: the request reaches moto and
applies, then the client sees a read timeout, which botocore's standard retry mode sends again.
"""

import json
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from tests.unit.capacity.counters_contract import NOW, new_scope
from vmx.capacity.ledger import CounterScope, Priority, Reservation, WindowLimit
from vmx.capacity.limits import CapacityPeriod, PriorityClass
from vmx.capacity.windows import current_window
from vmx.storage.capacity_store import ORPHANED_AFTER, DynamoCapacityCounters
from vmx.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

MINUTE, DAY = CapacityPeriod.MINUTE, CapacityPeriod.DAY
LIMITS = [WindowLimit(MINUTE, 100, 10_000), WindowLimit(DAY, 1000, 100_000)]


class LostAnswers:
    """Loses the answer of a chosen UpdateItem attempt after moto has applied it, as a read timeout would."""

    def __init__(self, client: "DynamoDBClient"):
        self.attempts = 0
        # the item as it stood when the answer was lost: proof that the write had been applied
        self.item_when_lost: dict[str, Any] | None = None
        self._lose_at: int | None = None
        self._reader = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
        # On "before-send" itself and last, so that it runs after moto's handler (also on "before-send") has
        # applied the request: botocore calls a more specific event's handlers before the general ones.
        client.meta.events.register_last("before-send", self._answered)

    def was_applied(self, reservation: Reservation, settling: bool = False) -> bool:
        """Whether the lost write had been applied: a reservation's mark was there, or a settling's gone."""
        assert self.item_when_lost is not None
        return (f"q_{reservation.request_id}" in self.item_when_lost) is not settling

    def lose(self, nth: int) -> None:
        """Loses the answer of the `nth` UpdateItem attempt from now on, retries included."""
        self.attempts = 0
        self._lose_at = nth

    def _answered(self, request: AWSPreparedRequest, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target")
        if (target.decode() if isinstance(target, bytes) else target) != "DynamoDB_20120810.UpdateItem":
            return
        self.attempts += 1
        if self.attempts == self._lose_at:
            sent = json.loads(request.body if isinstance(request.body, bytes | str) else b"{}")
            self.item_when_lost = self._reader.get_item(
                TableName=sent["TableName"], Key=sent["Key"], ConsistentRead=True
            ).get("Item")
            raise ReadTimeoutError(endpoint_url=request.url)


@pytest.fixture
def retrying_client(aws: None) -> "DynamoDBClient":
    return boto3.client(
        "dynamodb", region_name=os.environ["AWS_REGION"], config=Config(retries={"mode": "standard", "max_attempts": 3})
    )


@pytest.fixture
def lost_answers(retrying_client: "DynamoDBClient") -> LostAnswers:
    return LostAnswers(retrying_client)


@pytest.fixture
def retried(capacity_table: str, retrying_client: "DynamoDBClient") -> DynamoCapacityCounters:
    return DynamoCapacityCounters(capacity_table, os.environ["AWS_REGION"], client=retrying_client)


def counts(counters: DynamoCapacityCounters, scope: CounterScope, limits: list[WindowLimit] = LIMITS) -> set[Any]:
    return {(usage.requests_used, usage.tokens_used) for usage in counters.usage(scope, limits, NOW)}


def marks(capacity_table: str, scope: CounterScope) -> set[str]:
    sort_key = "GLOBAL" if scope.source_ip is None else f"IP#{scope.source_ip}"
    item = boto3.client("dynamodb").get_item(
        TableName=capacity_table,
        Key={"pk": {"S": f"CAP#{scope.connection_id}"}, "sk": {"S": sort_key}},
        ConsistentRead=True,
    )["Item"]
    return {name for name in item if name.startswith("q_")}


# --- a write applied whose answer was lost, sent again by botocore ---


@pytest.mark.parametrize(
    "limits",
    [
        LIMITS,
        # the retried write finds the minute full, by its own first attempt: it must still read as admitted
        [WindowLimit(MINUTE, 2, 130), WindowLimit(DAY, 1000, 100_000)],
    ],
    ids=["room-left", "filled-by-itself"],
)
def test_a_reserve_applied_whose_answer_was_lost_counts_once(
    retried: DynamoCapacityCounters, lost_answers: LostAnswers, limits: list[WindowLimit]
) -> None:
    scope = new_scope()
    retried.reserve(scope, limits, 30, NOW, uuid4().hex)
    lost_answers.lose(1)

    reservation = retried.reserve(scope, limits, 100, NOW, uuid4().hex)

    assert lost_answers.attempts == 2
    assert lost_answers.was_applied(reservation)
    assert counts(retried, scope, limits) == {(2, 130)}
    assert [(usage.requests_used, usage.tokens_used) for usage in reservation.usage] == [(2, 130), (2, 130)]
    assert dict(reservation.windows) == {
        MINUTE: current_window(MINUTE, NOW).id,
        DAY: current_window(DAY, NOW).id,
    }


def test_the_first_reserve_of_a_window_applied_whose_answer_was_lost_counts_once(
    retried: DynamoCapacityCounters, lost_answers: LostAnswers
) -> None:
    scope = new_scope()
    # the first attempt finds no item; the second, which opens the windows, is applied and its answer lost
    lost_answers.lose(2)

    reservation = retried.reserve(scope, LIMITS, 100, NOW, uuid4().hex)

    assert lost_answers.attempts == 3
    assert lost_answers.was_applied(reservation)
    assert counts(retried, scope) == {(1, 100)}
    retried.reconcile(reservation, 60, NOW)
    assert counts(retried, scope) == {(1, 60)}


@pytest.mark.parametrize("actual_tokens", [0, 40, 250])
def test_a_reconcile_applied_whose_answer_was_lost_settles_once(
    retried: DynamoCapacityCounters, lost_answers: LostAnswers, actual_tokens: int
) -> None:
    scope = new_scope()
    reservation = retried.reserve(scope, LIMITS, 100, NOW, uuid4().hex)
    # another request in flight in the same windows
    retried.reserve(scope, LIMITS, 100, NOW, uuid4().hex)
    lost_answers.lose(1)

    retried.reconcile(reservation, actual_tokens, NOW)

    assert lost_answers.attempts == 2
    assert lost_answers.was_applied(reservation, settling=True)
    # once: the other request's 100 and what this one really used, never less
    assert counts(retried, scope) == {(2, 100 + actual_tokens)}


def test_a_reconcile_of_the_only_request_applied_twice_would_go_negative_but_does_not(
    retried: DynamoCapacityCounters, lost_answers: LostAnswers
) -> None:
    scope = new_scope()
    reservation = retried.reserve(scope, LIMITS, 100, NOW, uuid4().hex)
    lost_answers.lose(1)

    retried.reconcile(reservation, 3, NOW)

    assert lost_answers.was_applied(reservation, settling=True)
    assert counts(retried, scope) == {(1, 3)}


def test_a_release_applied_whose_answer_was_lost_takes_back_once(
    retried: DynamoCapacityCounters, lost_answers: LostAnswers
) -> None:
    scope = new_scope()
    reservation = retried.reserve(scope, LIMITS, 100, NOW, uuid4().hex)
    retried.reserve(scope, LIMITS, 70, NOW, uuid4().hex)
    lost_answers.lose(1)

    retried.release(reservation)

    assert lost_answers.attempts == 2
    assert lost_answers.was_applied(reservation, settling=True)
    assert counts(retried, scope) == {(1, 70)}


def test_a_class_reservation_whose_answer_was_lost_counts_once_and_releases_exactly(
    retried: DynamoCapacityCounters, lost_answers: LostAnswers
) -> None:
    counters, limits = retried, [WindowLimit(MINUTE, 10, 1000)]
    classes = (PriorityClass(name="production", guaranteed_percent=60), PriorityClass(name="batch", maximum_percent=40))
    scope = new_scope()
    counters.reserve(scope, limits, 500, NOW, uuid4().hex, Priority(classes, "production"))
    lost_answers.lose(1)

    # 100 of production's guarantee left, 100 more of the shared part
    reservation = counters.reserve(scope, limits, 200, NOW, uuid4().hex, Priority(classes, "production"))

    assert lost_answers.was_applied(reservation)
    assert [
        (usage.requests_used, usage.tokens_used) for usage in counters.usage(scope, limits, NOW, classes)[0].classes
    ] == [(2, 700), (0, 0)]
    lost_answers.lose(1)
    counters.release(reservation)
    assert lost_answers.was_applied(reservation, settling=True)
    assert [
        (usage.requests_used, usage.tokens_used) for usage in counters.usage(scope, limits, NOW, classes)[0].classes
    ] == [(1, 500), (0, 0)]
    # batch has the whole shared part (400) again
    counters.reserve(scope, limits, 400, NOW, uuid4().hex, Priority(classes, "batch"))


# --- a write sent again by its caller ---


def test_a_reserve_sent_again_with_its_request_id_counts_once_even_in_a_window_it_filled(
    counters: DynamoCapacityCounters,
) -> None:
    scope = new_scope()
    limits = [WindowLimit(MINUTE, 1, 100)]
    request_id = uuid4().hex
    first = counters.reserve(scope, limits, 100, NOW, request_id)

    again = counters.reserve(scope, limits, 100, NOW, request_id)

    assert (dict(again.windows), again.tokens, again.request_id) == (dict(first.windows), 100, request_id)
    assert counts(counters, scope, limits) == {(1, 100)}
    counters.reconcile(again, 20, NOW)
    counters.reconcile(first, 20, NOW)
    assert counts(counters, scope, limits) == {(1, 20)}


# --- marks of requests that never settled ---


@pytest.mark.parametrize("settle", ["release", "reconcile"])
def test_the_next_settle_drops_marks_older_than_any_invocation_and_keeps_their_counts(
    counters: DynamoCapacityCounters, capacity_table: str, settle: str
) -> None:
    scope = new_scope()
    limits = [WindowLimit(DAY, 100, 10_000)]
    orphan_id, youngest_orphan_id, live_id, settling_id = (uuid4().hex for _ in range(4))
    orphan = counters.reserve(scope, limits, 10, NOW - ORPHANED_AFTER - timedelta(seconds=1), orphan_id)
    # exactly ORPHANED_AFTER old: it could still be settled
    counters.reserve(scope, limits, 10, NOW - ORPHANED_AFTER, youngest_orphan_id)
    counters.reserve(scope, limits, 10, NOW - timedelta(minutes=5), live_id)
    reservation = counters.reserve(scope, limits, 100, NOW, settling_id)

    if settle == "release":
        counters.release(reservation)
    else:
        counters.reconcile(reservation, 100, NOW)

    assert timedelta(minutes=30) == ORPHANED_AFTER
    assert reservation.orphans == (f"q_{orphan_id}",)
    assert marks(capacity_table, scope) == {f"q_{youngest_orphan_id}", f"q_{live_id}"}
    # the orphan stays counted as reserved: an overcount, never an undercount
    expected = {(3, 30)} if settle == "release" else {(4, 130)}
    assert counts(counters, scope, limits) == expected
    # and its settling, should it come after all, changes nothing
    counters.release(orphan)
    assert counts(counters, scope, limits) == expected


# --- reconcile refuses a negative use ---


def test_a_negative_actual_use_is_refused_before_any_write(
    counters: DynamoCapacityCounters, dynamodb_calls: list[str]
) -> None:
    scope = new_scope()
    reservation = counters.reserve(scope, LIMITS, 100, NOW, uuid4().hex)
    dynamodb_calls.clear()

    with pytest.raises(ValueError, match="actual_tokens must not be negative"):
        counters.reconcile(reservation, -1, NOW)

    assert dynamodb_calls == []
    assert counts(counters, scope) == {(1, 100)}
    # still in flight: a reconcile with a real figure settles it, and zero is one
    counters.reconcile(reservation, 0, NOW)
    assert counts(counters, scope) == {(1, 0)}


# --- an item that keeps changing ---


class AnotherWriter:
    """Before each of the next `changes` UpdateItems a client sends, another writer moves the scope's minute to an
    older window than the one the adapter last saw, so that its condition fails and it must look again."""

    def __init__(self, capacity_table: str, client: "DynamoDBClient", changes: int):
        self.scope = new_scope()
        self.updates = 0
        self._table = capacity_table
        self._changes = changes
        self._other = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
        client.meta.events.register("before-call.dynamodb.UpdateItem", self._rewrite)

    def _rewrite(self, **_: Any) -> None:
        self.updates += 1
        if self.updates > self._changes:
            return
        older = int(current_window(MINUTE, NOW).id) - 60 * self.updates
        self._other.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"CAP#{self.scope.connection_id}"},
                "sk": {"S": "GLOBAL"},
                "minute_w": {"S": str(older)},
                "minute_r": {"N": "0"},
                "minute_t": {"N": "0"},
            },
        )


def test_a_reserve_gives_up_after_eight_writes_when_the_item_keeps_changing(
    counters: DynamoCapacityCounters, capacity_table: str, dynamodb: "DynamoDBClient"
) -> None:
    writer = AnotherWriter(capacity_table, dynamodb, changes=10**6)

    with pytest.raises(StorageUnavailable, match="kept changing under concurrent writes"):
        counters.reserve(writer.scope, [WindowLimit(MINUTE, 5, None)], 0, NOW, uuid4().hex)

    assert writer.updates == 8


def test_a_reserve_whose_eighth_write_finds_the_item_still_is_admitted(
    counters: DynamoCapacityCounters, capacity_table: str, dynamodb: "DynamoDBClient"
) -> None:
    writer = AnotherWriter(capacity_table, dynamodb, changes=7)

    counters.reserve(writer.scope, [WindowLimit(MINUTE, 5, None)], 0, NOW, uuid4().hex)

    assert writer.updates == 8
    assert counts(counters, writer.scope, [WindowLimit(MINUTE, 5, None)]) == {(1, 0)}


# --- every read is strongly consistent ---

_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


def test_every_read_of_the_counters_is_strongly_consistent(
    counters: DynamoCapacityCounters, dynamodb: "DynamoDBClient"
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, dict(params)))

    dynamodb.meta.events.register("provide-client-params.dynamodb", record)
    for scope in (new_scope(), new_scope("203.0.113.7")):
        reservation = counters.reserve(scope, LIMITS, 100, NOW, uuid4().hex)
        counters.usage(scope, LIMITS, NOW)
        counters.reconcile(reservation, 10, NOW)
        counters.release(counters.reserve(scope, LIMITS, 100, NOW, uuid4().hex))
        counters.usage(scope, LIMITS, NOW)
        # a scope never counted
        counters.usage(new_scope(), LIMITS, NOW)

    reads = [(operation, params) for operation, params in sent if operation in _READS]
    assert [operation for operation, _ in reads] == ["GetItem"] * 6
    assert all(params.get("ConsistentRead") is True for _, params in reads)

"""Events from the bus to consumer handlers on moto: rules, queues, partial batch failures, dead letters."""

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest
import requests
from pydantic import BaseModel

from infra import system
from infra.system import EVENT_SOURCE, EventQueue, Function
from local_stack.emulator import moto_client, start_moto
from local_stack.event_delivery import (
    WAIT_SECONDS,
    EventDelivery,
    LocalQueue,
    failed_message_ids,
    provision_event_queues,
    with_account,
)
from local_stack.lambda_runtime import ACCOUNT_ID, LambdaRuntime

# Within "a couple of seconds" of a request, as the local stack promises.
DELIVERY_SECONDS = 3
# A consumer and its queue that give up quickly, for the tests of retries and dead letters.
FLAKY = Function(name="flaky", description="", source_dir="flaky", settings=BaseModel, timeout_seconds=5)
FLAKY_QUEUE = EventQueue("flaky", FLAKY.name, ("Flaky",), max_receive_count=2, batch_size=10)
FLAKY_VISIBILITY_SECONDS = 1


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server, endpoint_url = start_moto("127.0.0.1", 0)
    yield endpoint_url
    # moto's backends are process-wide: leave nothing behind for other tests in this worker
    requests.post(f"{endpoint_url}/moto-api/reset", timeout=10)
    server.stop()


@dataclass
class FakeConsumer:
    """Records each SQS event it gets; `answer` decides what it returns (or raises) for one."""

    answer: Callable[[dict[str, Any], int], Any] = lambda event, call: None
    events: list[dict[str, Any]] = field(default_factory=list)
    received: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self.received:
            self.events.append(event)
            self.received.notify_all()
        return self.answer(event, len(self.events))

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]

    def wait_for(self, done: Callable[[], bool], seconds: float) -> bool:
        with self.received:
            return self.received.wait_for(done, timeout=seconds)


@dataclass(frozen=True)
class Bus:
    name: str
    queues: dict[str, LocalQueue]
    endpoint_url: str

    def put(self, detail_type: str, detail: dict[str, Any], source: str = EVENT_SOURCE) -> None:
        response = moto_client("events", self.endpoint_url).put_events(
            Entries=[
                {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": self.name}
            ]
        )
        assert response["FailedEntryCount"] == 0

    def messages_left(self, queue: LocalQueue) -> int:
        attributes = moto_client("sqs", self.endpoint_url).get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self, queue: LocalQueue) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (
            moto_client("sqs", self.endpoint_url)
            .receive_message(QueueUrl=queue.dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            .get("Messages", [])
        )
        return [json.loads(message["Body"]) for message in messages]


def make_bus(endpoint_url: str, prefix: str, queues: tuple[EventQueue, ...], visibility_seconds: int) -> Bus:
    """A bus of its own per test, so that no test sees another's events."""
    name = f"{prefix}bus"
    events = moto_client("events", endpoint_url)
    events.create_event_bus(Name=name)
    provisioned = provision_event_queues(
        moto_client("sqs", endpoint_url),
        events,
        queues,
        bus_name=name,
        name_prefix=prefix,
        visibility_timeout_seconds=visibility_seconds,
    )
    return Bus(name, {queue.spec.name: queue for queue in provisioned}, endpoint_url)


def deliver(bus: Bus, functions: list[Function], consumers: dict[str, FakeConsumer]) -> EventDelivery:
    runtime = LambdaRuntime(functions, consumers)
    return EventDelivery(bus.queues.values(), moto_client("sqs", bus.endpoint_url), runtime.invoke)


@pytest.fixture
def system_bus(moto_endpoint: str) -> Bus:
    return make_bus(moto_endpoint, f"test-{uuid4().hex[:8]}-", system.EVENT_QUEUES, visibility_seconds=2)


@pytest.fixture
def flaky_bus(moto_endpoint: str) -> Bus:
    return make_bus(moto_endpoint, f"test-{uuid4().hex[:8]}-", (FLAKY_QUEUE,), FLAKY_VISIBILITY_SECONDS)


def test_an_event_put_on_the_bus_reaches_its_consumer_within_seconds_and_is_deleted(system_bus: Bus) -> None:
    consumers = {system.DISCOVERY.name: FakeConsumer(), system.USAGE.name: FakeConsumer()}
    queue = system_bus.queues["discovered-capacity"]

    with deliver(system_bus, [system.DISCOVERY, system.USAGE], consumers):
        started = time.monotonic()
        system_bus.put("RateLimitsObserved", {"connectionId": "conn_1"})
        arrived = consumers[system.DISCOVERY.name].wait_for(
            lambda: bool(consumers[system.DISCOVERY.name].events), DELIVERY_SECONDS
        )
        elapsed = time.monotonic() - started
        # the handler returned nothing: a complete success, so the record is deleted
        deadline = time.monotonic() + DELIVERY_SECONDS
        while system_bus.messages_left(queue) and time.monotonic() < deadline:
            time.sleep(0.05)

    assert arrived, "nothing reached the discovery consumer"
    assert elapsed < DELIVERY_SECONDS
    (record,) = consumers[system.DISCOVERY.name].records
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"messageId", "receiptHandle", "body", "messageAttributes", "md5OfBody"} <= set(record)
    event = json.loads(record["body"])
    assert event["source"] == EVENT_SOURCE
    assert event["detail-type"] == "RateLimitsObserved"
    assert event["detail"] == {"connectionId": "conn_1"}
    # moto leaves it out; the poller sets it as EventBridge does
    assert event["account"] == ACCOUNT_ID
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
    assert consumers[system.USAGE.name].events == []
    assert system_bus.messages_left(queue) == 0


def test_events_of_other_detail_types_or_sources_reach_no_consumer(system_bus: Bus) -> None:
    consumers = {system.DISCOVERY.name: FakeConsumer(), system.USAGE.name: FakeConsumer()}

    with deliver(system_bus, [system.DISCOVERY, system.USAGE], consumers):
        system_bus.put("ConnectionCreated", {"connectionId": "conn_1"})
        system_bus.put("CompletionRecorded", {"connectionId": "conn_1"}, source="someone.else")
        system_bus.put("CompletionRecorded", {"connectionId": "conn_2"})
        usage = consumers[system.USAGE.name]
        assert usage.wait_for(lambda: bool(usage.events), DELIVERY_SECONDS)
        time.sleep(WAIT_SECONDS)

    assert [json.loads(record["body"])["detail"] for record in usage.records] == [{"connectionId": "conn_2"}]
    assert consumers[system.DISCOVERY.name].events == []


def fail_where_asked(event: dict[str, Any], call: int) -> dict[str, Any]:
    """Reports as failed every record whose detail says `"fail": true`."""
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if json.loads(record["body"])["detail"].get("fail")
        ]
    }


def test_a_record_reported_as_failed_is_redelivered_then_dead_lettered_while_the_others_are_deleted(
    flaky_bus: Bus,
) -> None:
    consumer = FakeConsumer(answer=fail_where_asked)
    queue = flaky_bus.queues[FLAKY_QUEUE.name]

    with deliver(flaky_bus, [FLAKY], {FLAKY.name: consumer}):
        flaky_bus.put("Flaky", {"n": 1, "fail": True})
        flaky_bus.put("Flaky", {"n": 2})
        seconds = DELIVERY_SECONDS + FLAKY_QUEUE.max_receive_count * (FLAKY_VISIBILITY_SECONDS + WAIT_SECONDS)
        deadline = time.monotonic() + seconds
        dead_letters: list[dict[str, Any]] = []
        while not dead_letters and time.monotonic() < deadline:
            time.sleep(0.2)
            dead_letters = flaky_bus.dead_letters(queue)

    attempts: dict[int, list[str]] = {}
    for record in consumer.records:
        attempts.setdefault(json.loads(record["body"])["detail"]["n"], []).append(
            record["attributes"]["ApproximateReceiveCount"]
        )
    assert attempts == {1: ["1", "2"], 2: ["1"]}
    assert [event["detail"] for event in dead_letters] == [{"n": 1, "fail": True}]
    assert flaky_bus.messages_left(queue) == 0


def test_a_consumer_that_raises_gets_the_whole_batch_again(flaky_bus: Bus) -> None:
    def raise_the_first_time(event: dict[str, Any], call: int) -> None:
        if call == 1:
            raise RuntimeError("consumer bug")

    consumer = FakeConsumer(answer=raise_the_first_time)
    queue = flaky_bus.queues[FLAKY_QUEUE.name]

    with deliver(flaky_bus, [FLAKY], {FLAKY.name: consumer}):
        flaky_bus.put("Flaky", {"n": 1})
        seconds = DELIVERY_SECONDS + FLAKY_VISIBILITY_SECONDS + WAIT_SECONDS
        assert consumer.wait_for(lambda: len(consumer.events) == 2, seconds)
        deadline = time.monotonic() + DELIVERY_SECONDS
        while flaky_bus.messages_left(queue) and time.monotonic() < deadline:
            time.sleep(0.05)

    assert [record["attributes"]["ApproximateReceiveCount"] for record in consumer.records] == ["1", "2"]
    assert flaky_bus.messages_left(queue) == 0
    assert flaky_bus.dead_letters(queue) == []


def test_delivery_stops_promptly(flaky_bus: Bus) -> None:
    delivery = deliver(flaky_bus, [FLAKY], {FLAKY.name: FakeConsumer()})
    delivery.__enter__()
    time.sleep(0.1)

    started = time.monotonic()
    delivery.__exit__(None, None, None)

    assert time.monotonic() - started < WAIT_SECONDS + 1
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("queue-")]


IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    "result",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["nothing", "empty map", "empty list", "null list"],
)
def test_an_empty_answer_is_a_complete_success(result: Any) -> None:
    assert failed_message_ids(IDS, result) == set()


def test_the_reported_records_fail_and_only_they() -> None:
    result = {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}

    assert failed_message_ids(IDS, result) == {"m2", "m3"}


@pytest.mark.parametrize(
    "result",
    [
        "not a map",
        {"batchItemFailures": "m1"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "not-in-the-batch"}]},
    ],
    ids=["not a map", "not a list", "empty id", "null id", "bad key", "unknown id"],
)
def test_an_answer_lambda_cannot_read_fails_the_whole_batch(result: Any) -> None:
    assert failed_message_ids(IDS, result) == set(IDS)


def test_the_account_is_added_to_events_that_lack_it_and_nothing_else_changes() -> None:
    event = {"id": "e1", "detail-type": "Flaky", "source": EVENT_SOURCE, "detail": {"n": 1}}

    assert json.loads(with_account(json.dumps(event))) == {**event, "account": ACCOUNT_ID}
    with_one = json.dumps({**event, "account": "123456789012"})
    assert with_account(with_one) == with_one
    for body in ("not json", "[1, 2]", json.dumps({"not": "an event"})):
        assert with_account(body) == body


def test_a_queue_with_a_delivery_delay_holds_each_event_back_as_on_aws(system_bus: Bus) -> None:
    queue = system_bus.queues["connection-remains"]
    system_bus.put("ConnectionDeleted", {"connectionId": "conn_1"})

    attributes = moto_client("sqs", system_bus.endpoint_url).get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["DelaySeconds", "ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["DelaySeconds"] == str(system.CONNECTION_REMAINS_DELAY_SECONDS)
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"

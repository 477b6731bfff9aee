"""An event bus on moto with a rule that delivers to an SQS queue, as a consumer would subscribe."""

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from vmx.aws.event_bus import EventBridgePublisher, FailureLog, RetryPolicy
from vmx.aws.event_outbox import EventOutbox
from vmx.events.models import EVENT_SOURCE, ReceivedEvent, parse_event

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

BUS_NAME = "vmx-test-events"


@dataclass
class Reports:
    """What the publisher reported: its waits, and the counts the handler turns into EventsDeferred and
    EventsNotPublished."""

    sleeps: list[float] = field(default_factory=list)
    not_published: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)


@dataclass
class KeptEntries:
    """An outbox that keeps what it is given, or (down) nothing."""

    entries: list[Any] = field(default_factory=list)
    down: bool = False

    def keep(self, entries: Sequence[Any]) -> list[int]:
        if self.down:
            return list(range(len(entries)))
        self.entries += entries
        return []


@dataclass(frozen=True)
class Bus:
    events: "EventBridgeClient"

    def subscribe(self, rule: str, pattern: dict[str, Any]) -> str:
        """A rule on the bus that delivers matching events to a queue of its own; returns the queue's URL."""
        sqs = boto3.client("sqs")
        queue_url: str = sqs.create_queue(QueueName=rule)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events.put_rule(Name=rule, EventBusName=BUS_NAME, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=rule, EventBusName=BUS_NAME, Targets=[{"Id": "queue", "Arn": queue_arn}])
        return queue_url

    @staticmethod
    def received(queue_url: str) -> list[ReceivedEvent]:
        """Every event the queue holds, read as a consumer reads it."""
        sqs = boto3.client("sqs")
        events: list[ReceivedEvent] = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            events += [parse_event(message["Body"]) for message in messages]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]} for n, message in enumerate(messages)
                ],
            )
        return events


@pytest.fixture
def bus() -> Iterator[Bus]:
    with mock_aws():
        events = boto3.client("events")
        events.create_event_bus(Name=BUS_NAME)
        yield Bus(events)


@pytest.fixture
def everything(bus: Bus) -> str:
    """The URL of a queue subscribed to every event of ours."""
    return bus.subscribe("everything", {"source": [EVENT_SOURCE]})


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def log() -> logging.Logger:
    return logging.getLogger("vmx.events.test")


@pytest.fixture
def outbox() -> KeptEntries:
    return KeptEntries()


def publisher_for(
    client: "EventBridgeClient", log: FailureLog, reports: Reports, outbox: EventOutbox | None = None
) -> EventBridgePublisher:
    return EventBridgePublisher(
        client,
        BUS_NAME,
        log,
        reports.not_published.append,
        outbox or KeptEntries(down=True),
        reports.deferred.append,
        RetryPolicy(),
        sleep=reports.sleeps.append,
    )

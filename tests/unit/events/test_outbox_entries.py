"""What the event outbox keeps (a PutEvents entry as JSON) and what its consumer refuses, and the publisher's
retry policy; no network (botocore's Stubber answers for the bus)."""

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.events.samples import completion_recorded
from vmx import wiring
from vmx.aws.event_bus import RetryPolicy
from vmx.aws.event_outbox import EventOutboxConsumer, OutboxEntryNotPublished, UnreadableEntry, message_body
from vmx.events.models import put_events_entry

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient


@pytest.fixture
def stubbed() -> Iterator[tuple["EventBridgeClient", Stubber]]:
    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_kept_entry_is_the_put_events_entry_without_its_bus_and_with_its_time_in_iso_8601() -> None:
    event = completion_recorded()

    kept = json.loads(message_body(put_events_entry(event, "the-bus")))

    assert kept == {
        "Source": "vmx.ai-connections",
        "DetailType": "CompletionRecorded",
        "Detail": event.model_dump_json(),
        "Time": event.occurred_at.isoformat(),
    }
    assert json.loads(kept["Detail"])["eventId"] == str(event.event_id)


def test_the_consumer_puts_the_entry_on_its_own_bus(stubbed: tuple["EventBridgeClient", Stubber]) -> None:
    client, stubber = stubbed
    event = completion_recorded()
    entry = json.loads(message_body(put_events_entry(event, "the-publishers-bus")))
    stubber.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "eb-1"}]},
        {"Entries": [{**entry, "EventBusName": "the-consumers-bus"}]},
    )

    EventOutboxConsumer(client, "the-consumers-bus").publish(message_body(put_events_entry(event, "x")))


def test_an_entry_the_bus_refuses_for_now_raises_for_sqs_to_deliver_it_again(
    stubbed: tuple["EventBridgeClient", Stubber],
) -> None:
    client, stubber = stubbed
    refused = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
    stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [refused]})

    with pytest.raises(OutboxEntryNotPublished):
        EventOutboxConsumer(client, "bus").publish(message_body(put_events_entry(completion_recorded(), "x")))


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"Source": "vmx.ai-connections", "DetailType": "CompletionRecorded"}),
        json.dumps({"Source": "someone.else", "DetailType": "CompletionRecorded", "Detail": "{}"}),
        json.dumps({"Source": "vmx.ai-connections", "DetailType": "CompletionRecorded", "Detail": "{}", "Time": 3}),
    ],
    ids=["not json", "not an object", "no detail", "another source", "time not a string"],
)
def test_a_body_no_retry_can_publish_is_refused_without_calling_the_bus(
    stubbed: tuple["EventBridgeClient", Stubber], body: str
) -> None:
    client, _ = stubbed

    with pytest.raises(UnreadableEntry):
        EventOutboxConsumer(client, "bus").publish(body)


def test_the_production_policy_is_the_clients_timeouts_within_a_budget_that_holds_both() -> None:
    policy = wiring.PUBLISH_RETRY

    assert policy.attempt_seconds == 1.5 == policy.keep_seconds
    # both failing slowly: two attempts on the bus and one on the outbox fit; the budget is never exceeded
    assert policy.attempt_seconds * 2 + policy.first_delay_seconds + policy.keep_seconds <= policy.budget_seconds


@pytest.mark.parametrize(
    "arguments",
    [{"attempts": 0}, {"keep_attempts": 0}, {"first_delay_seconds": -1}, {"budget_seconds": 2.9}],
    ids=["no attempt", "no outbox attempt", "negative wait", "budget below one of each"],
)
def test_a_policy_that_cannot_keep_its_promise_is_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**arguments)  # type: ignore[arg-type]

"""The event outbox: what the bus will not take now is kept in an SQS queue and put on the bus later, exactly once
per event id; all of it within the publisher's time budget. Failures are injected into the real boto3 clients
(botocore's before-send hooks) of the bus and the outbox, both on moto; time is a fake clock's."""

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from functions.event_outbox import handler as outbox_handler
from infra.system import EVENT_OUTBOX
from local_stack.event_delivery import sqs_event as local_sqs_event
from local_stack.lambda_runtime import new_context
from tests.functional.events.conftest import BUS_NAME, Bus, Reports
from tests.unit.events.samples import completion_recorded
from vmx import wiring
from vmx.aws.event_bus import EventBridgePublisher, FailureLog
from vmx.aws.event_outbox import EventOutboxConsumer, SqsEventOutbox
from vmx.deadline import Deadline
from vmx.events.models import EventDetail

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient

# The production policy: the clients' timeouts and the budget they make (vmx.wiring).
POLICY = wiring.PUBLISH_RETRY


@dataclass
class Clock:
    """The monotonic clock, faked: sleeping and slow calls move it on, and nothing really waits."""

    now: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answered(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    """What a before-call hook returns for botocore to take as the service's answer, without sending anything."""
    http = AWSResponse("https://injected.amazonaws.com/", status, {"x-amzn-RequestId": "injected"}, None)  # type: ignore[arg-type]
    return http, {**parsed, "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected"}}


def error_response(status: int, code: str) -> tuple[AWSResponse, dict[str, Any]]:
    return answered(status, {"Error": {"Code": code, "Message": "injected"}})


def refusing_entries(doomed: set[str]) -> Callable[..., tuple[AWSResponse, dict[str, Any]]]:
    """PutEvents answering with the entries whose eventId is in `doomed` failed, the others accepted."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}
            if json.loads(entry["Detail"])["eventId"] in doomed
            else {"EventId": f"eb-{n}"}
            # the request as botocore serialized it, about to be sent
            for n, entry in enumerate(json.loads(params["body"])["Entries"])
        ]
        return answered(200, {"FailedEntryCount": sum("ErrorCode" in result for result in results), "Entries": results})

    return answer


@dataclass
class Calls:
    """Counts the calls of one operation; with a `failure`, each one fails (and takes `seconds` of the clock)
    before anything is sent, so the service never sees it."""

    clock: Clock
    failure: Callable[..., Any] | None = None
    seconds: float = 0.0
    made: int = 0

    def __call__(self, **kwargs: Any) -> Any:
        self.made += 1
        self.clock.now += self.seconds
        return self.failure(**kwargs) if self.failure else None


def hooked(client: Any, operation: str, calls: Calls) -> Calls:
    # before-call: an answer returned here is the call's answer, and moto never receives the request
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", calls)
    return calls


def raising(error: Exception) -> Callable[..., Any]:
    def fail(**_: Any) -> Any:
        raise error

    return fail


@dataclass
class Outbox:
    client: "SQSClient"
    url: str

    def messages(self) -> list[dict[str, Any]]:
        """Every message the queue holds, received (invisible for a minute) but not deleted."""
        received: list[Any] = []
        while batch := self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageSystemAttributeNames=["All"]
        ).get("Messages", []):
            received += batch
        return received

    def event_ids(self) -> list[str]:
        return [json.loads(json.loads(message["Body"])["Detail"])["eventId"] for message in self.messages()]


@pytest.fixture
def outbox(bus: Bus) -> Outbox:
    client = boto3.client("sqs", config=wiring.OUTBOX_CLIENT_CONFIG)
    return Outbox(client, client.create_queue(QueueName="vmx-test-event-outbox")["QueueUrl"])


@pytest.fixture
def events_client(bus: Bus) -> "EventBridgeClient":
    """A client for the bus configured as in production: one attempt per call, short timeouts."""
    return boto3.client("events", config=wiring.BUS_CLIENT_CONFIG)


@pytest.fixture(autouse=True)
def _outbox_handler_builds_its_own_afterwards() -> Iterator[None]:
    yield
    outbox_handler.function.dependencies.use(None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def publisher(
    events_client: "EventBridgeClient", outbox: Outbox, clock: Clock, reports: Reports, log: FailureLog
) -> EventBridgePublisher:
    return EventBridgePublisher(
        events_client,
        BUS_NAME,
        log,
        reports.not_published.append,
        SqsEventOutbox(outbox.client, outbox.url),
        reports.deferred.append,
        POLICY,
        sleep=clock.sleep,
        clock=clock,
    )


def ids(events: Sequence[EventDetail]) -> list[str]:
    return [str(event.event_id) for event in events]


def not_published_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, str | None]]:
    return [
        (
            record.__dict__["event_id"],
            record.__dict__["detail_type"],
            record.__dict__["error_code"],
            record.__dict__.get("outbox"),
        )
        for record in caplog.records
        if record.levelno == logging.ERROR and record.getMessage() == "event not published"
    ]


BUS_FAILURES = {
    "throttled": (lambda **_: error_response(400, "ThrottlingException"), 0.01),
    "500": (lambda **_: error_response(500, "InternalException"), 0.01),
    "read timeout": (raising(ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com/")), 1.5),
    "unreachable": (raising(EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com/")), 0.5),
}


@pytest.mark.parametrize("failure", BUS_FAILURES, ids=str)
def test_events_the_bus_will_not_take_now_land_in_the_outbox_with_their_ids(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    everything: str,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    # Given a bus that keeps failing in one way
    answer, seconds = BUS_FAILURES[failure]
    puts = hooked(events_client, "PutEvents", Calls(clock, answer, seconds))
    events = [completion_recorded(), completion_recorded()]

    # When they are published
    publisher(events_client, outbox, clock, reports, log).publish(events)

    # Then they wait in the outbox, not on the bus, counted as deferred and not as lost
    assert sorted(outbox.event_ids()) == sorted(ids(events))
    assert Bus.received(everything) == []
    assert (reports.deferred, reports.not_published, not_published_logged(caplog)) == ([2], [], [])
    assert puts.made >= 2
    assert clock.now - 1_000.0 <= POLICY.budget_seconds


def test_the_outbox_consumer_puts_each_kept_event_on_the_bus_exactly_once(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    everything: str,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
) -> None:
    # Given events kept in the outbox while the bus was throttled
    throttled = hooked(events_client, "PutEvents", Calls(clock, BUS_FAILURES["throttled"][0]))
    events = [completion_recorded() for _ in range(3)]
    publisher(events_client, outbox, clock, reports, log).publish(events)
    throttled.failure = None

    # When the bus works again and the outbox's consumer gets the messages, as SQS's event source mapping gives them
    outbox_handler.function.dependencies.use(EventOutboxConsumer(events_client, BUS_NAME))
    messages = outbox.messages()
    response = outbox_handler.lambda_handler(sqs_event(messages), new_context(EVENT_OUTBOX))

    # Then a subscriber of the bus gets each event once, as it was made, and nothing is left to retry
    assert response == {"batchItemFailures": []}
    received = Bus.received(everything)
    assert sorted(str(event.detail.event_id) for event in received) == sorted(ids(events))
    assert {event.detail.event_id: event.detail for event in received} == {event.event_id: event for event in events}
    # the envelope's time is when it happened (to the second, as EventBridge keeps it), not when it got through
    assert {event.detail.event_id: event.time for event in received} == {
        event.event_id: event.occurred_at.replace(microsecond=0) for event in events
    }


def test_an_entry_the_bus_still_refuses_is_reported_alone_for_sqs_to_deliver_again(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    everything: str,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
) -> None:
    events = [completion_recorded() for _ in range(3)]
    puts = hooked(events_client, "PutEvents", Calls(clock, BUS_FAILURES["500"][0]))
    publisher(events_client, outbox, clock, reports, log).publish(events)
    messages = sorted(
        outbox.messages(), key=lambda message: json.loads(json.loads(message["Body"])["Detail"])["eventId"]
    )
    still_failing = json.loads(json.loads(messages[1]["Body"])["Detail"])["eventId"]
    puts.failure = refusing_entries({still_failing})
    outbox_handler.function.dependencies.use(EventOutboxConsumer(events_client, BUS_NAME))

    response = outbox_handler.lambda_handler(
        sqs_event([*messages, {**messages[0], "MessageId": "not-an-entry", "Body": "{}"}]), new_context(EVENT_OUTBOX)
    )

    assert response == {
        "batchItemFailures": [{"itemIdentifier": messages[1]["MessageId"]}, {"itemIdentifier": "not-an-entry"}]
    }


def test_an_event_the_bus_took_whose_answer_was_lost_arrives_twice_with_one_event_id(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    everything: str,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
) -> None:
    # Given a bus that takes every event but whose answers never arrive (after-call: once moto has applied it)
    lost = raising(ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com/"))
    answers_lost = Calls(clock, lost, POLICY.attempt_seconds)
    events_client.meta.events.register("after-call.events.PutEvents", answers_lost)
    event = completion_recorded()
    publisher(events_client, outbox, clock, reports, log).publish([event])
    answers_lost.failure = None

    outbox_handler.function.dependencies.use(EventOutboxConsumer(events_client, BUS_NAME))
    outbox_handler.lambda_handler(sqs_event(outbox.messages()), new_context(EVENT_OUTBOX))

    # Then each attempt and the outbox's delivery reached the bus: copies with one eventId, for consumers to drop
    received = Bus.received(everything)
    assert len(received) == answers_lost.made == 3
    assert {received_event.detail.event_id for received_event in received} == {event.event_id}
    assert len({received_event.id for received_event in received}) == len(received)


def test_when_the_outbox_fails_too_the_events_are_counted_and_logged_without_their_detail(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    clock: Clock,
    reports: Reports,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hooked(events_client, "PutEvents", Calls(clock, BUS_FAILURES["500"][0]))
    sends = hooked(
        outbox.client,
        "SendMessageBatch",
        Calls(clock, raising(EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/")), 0.5),
    )
    event = completion_recorded(connection_name="billing-prod")

    publisher(events_client, outbox, clock, reports, Logger(service="event-outbox-test")).publish([event])

    assert (reports.deferred, reports.not_published) == ([], [1])
    assert sends.made == POLICY.keep_attempts
    (line,) = capsys.readouterr().out.splitlines()
    logged = json.loads(line)
    assert (logged["level"], logged["message"]) == ("ERROR", "event not published")
    assert (logged["event_id"], logged["detail_type"], logged["error_code"], logged["outbox"]) == (
        str(event.event_id),
        "CompletionRecorded",
        "InternalException",
        "failed",
    )
    assert "billing-prod" not in line
    sends.failure = None
    assert outbox.event_ids() == []


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException"])
def test_a_permanent_error_is_counted_and_not_kept_for_later(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    puts = hooked(events_client, "PutEvents", Calls(clock, lambda **_: error_response(400, code)))
    event = completion_recorded()

    publisher(events_client, outbox, clock, reports, log).publish([event])

    assert (reports.deferred, reports.not_published, puts.made) == ([], [1], 1)
    assert not_published_logged(caplog) == [(str(event.event_id), "CompletionRecorded", code, None)]
    assert outbox.event_ids() == []


def test_only_the_entries_that_keep_failing_are_kept_for_later(
    events_client: "EventBridgeClient", outbox: Outbox, clock: Clock, reports: Reports, log: logging.Logger
) -> None:
    events = [completion_recorded() for _ in range(4)]
    doomed = {str(events[1].event_id), str(events[3].event_id)}
    puts = hooked(events_client, "PutEvents", Calls(clock, refusing_entries(doomed)))

    publisher(events_client, outbox, clock, reports, log).publish(events)

    assert sorted(outbox.event_ids()) == sorted(doomed)
    assert (reports.deferred, reports.not_published, puts.made) == ([2], [], POLICY.attempts)


@pytest.mark.parametrize(
    ("bus_seconds", "outbox_seconds"),
    [(1.5, 0.01), (1.5, 1.5), (0.01, 1.5), (0.2, 0.2)],
    ids=["bus stalls", "both stall", "outbox stalls", "both slow"],
)
def test_a_publish_never_takes_longer_than_its_budget(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
    bus_seconds: float,
    outbox_seconds: float,
) -> None:
    timeout = raising(ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com/"))
    hooked(events_client, "PutEvents", Calls(clock, timeout, bus_seconds))
    lost = raising(ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com/"))
    hooked(outbox.client, "SendMessageBatch", Calls(clock, lost, outbox_seconds))

    publisher(events_client, outbox, clock, reports, log).publish([completion_recorded()])

    assert clock.now - 1_000.0 <= POLICY.budget_seconds
    assert reports.not_published == [1]


@pytest.mark.parametrize(
    ("seconds_left", "bus_calls", "outbox_calls", "kept"),
    [
        # time for one attempt on the bus and one on the outbox
        (POLICY.attempt_seconds + POLICY.keep_seconds, 1, 1, True),
        # time for the outbox only: the bus is not tried
        (POLICY.keep_seconds, 0, 1, True),
        # not even that: lost, and said so
        (POLICY.keep_seconds - 0.1, 0, 0, False),
    ],
    ids=["one attempt each", "outbox only", "no time"],
)
def test_the_callers_deadline_shortens_the_budget(
    events_client: "EventBridgeClient",
    outbox: Outbox,
    clock: Clock,
    reports: Reports,
    log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    seconds_left: float,
    bus_calls: int,
    outbox_calls: int,
    kept: bool,
) -> None:
    timeout = raising(ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com/"))
    puts = hooked(events_client, "PutEvents", Calls(clock, timeout, POLICY.attempt_seconds))
    sends = hooked(outbox.client, "SendMessageBatch", Calls(clock, seconds=POLICY.keep_seconds))
    event = completion_recorded()

    publisher(events_client, outbox, clock, reports, log).publish([event], Deadline(clock.now + seconds_left))

    assert clock.now - 1_000.0 <= seconds_left
    assert (puts.made, sends.made) == (bus_calls, outbox_calls)
    assert outbox.event_ids() == (ids([event]) if kept else [])
    if not kept:
        assert not_published_logged(caplog) == [
            (str(event.event_id), "CompletionRecorded", "NoTimeLeft", "no time left")
        ]


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes, as the local stack builds it."""
    return local_sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:vmx-test-event-outbox")

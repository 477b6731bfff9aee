"""EventBridgePublisher against moto's EventBridge, and against botocore's Stubber for the failures moto cannot
produce: entries PutEvents reports as failed, whole-call errors, an unreachable endpoint."""

import json
import logging
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.stub import Stubber

from tests.functional.events.conftest import BUS_NAME, Bus, KeptEntries, Reports, publisher_for
from tests.unit.events.samples import completion_recorded, one_of_each
from vmx.events.models import EventDetail, put_events_entry

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient


@pytest.fixture
def client() -> "EventBridgeClient":
    return boto3.client("events", region_name="us-east-1")


@pytest.fixture
def stubbed(client: "EventBridgeClient") -> Iterator[Stubber]:
    """The client answers what each test adds, in order, and fails on a call with other parameters."""
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def entries(events: Sequence[EventDetail]) -> dict[str, Any]:
    return {"Entries": [put_events_entry(event, BUS_NAME) for event in events]}


def accepted(count: int) -> dict[str, Any]:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"eb-{n}"} for n in range(count)]}


def failures_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    return [
        (record.__dict__["event_id"], record.__dict__["detail_type"], record.__dict__["error_code"])
        for record in caplog.records
        if record.levelno == logging.ERROR and record.getMessage() == "event not published"
    ]


def test_published_events_reach_a_subscriber_as_they_were_made(
    bus: Bus, everything: str, log: logging.Logger, reports: Reports
) -> None:
    events = one_of_each()

    publisher_for(bus.events, log, reports).publish(events)

    received = {event.detail.event_id: event.detail for event in Bus.received(everything)}
    assert received == {event.event_id: event for event in events}
    assert reports == Reports()


def test_more_than_ten_events_go_in_several_calls(
    bus: Bus, everything: str, log: logging.Logger, reports: Reports
) -> None:
    calls: list[int] = []
    bus.events.meta.events.register(
        "provide-client-params.events.PutEvents", lambda params, **_: calls.append(len(params["Entries"]))
    )
    events = [completion_recorded() for _ in range(25)]

    publisher_for(bus.events, log, reports).publish(events)

    assert calls == [10, 10, 5]
    assert {event.detail.event_id for event in Bus.received(everything)} == {event.event_id for event in events}


def test_nothing_to_publish_makes_no_call(
    client: "EventBridgeClient", stubbed: Stubber, log: logging.Logger, reports: Reports
) -> None:
    publisher_for(client, log, reports).publish([])

    assert reports == Reports()


def test_only_the_entries_eventbridge_refused_are_sent_again_with_the_same_event_id(
    client: "EventBridgeClient",
    stubbed: Stubber,
    log: logging.Logger,
    reports: Reports,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [completion_recorded() for _ in range(3)]
    throttled = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
    stubbed.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"EventId": "eb-1"}, throttled, {"EventId": "eb-3"}]},
        entries(events),
    )
    stubbed.add_response("put_events", accepted(1), entries([events[1]]))

    publisher_for(client, log, reports).publish(events)

    assert reports == Reports(sleeps=[0.1])
    assert failures_logged(caplog) == []


def test_a_whole_call_error_is_retried_with_growing_waits(
    client: "EventBridgeClient", stubbed: Stubber, log: logging.Logger, reports: Reports
) -> None:
    events = [completion_recorded(), completion_recorded()]
    stubbed.add_client_error("put_events", "ThrottlingException", "Rate exceeded", 400, expected_params=entries(events))
    stubbed.add_client_error("put_events", "InternalException", "Oops", 500, expected_params=entries(events))
    stubbed.add_response("put_events", accepted(2), entries(events))

    publisher_for(client, log, reports).publish(events)

    assert reports == Reports(sleeps=[0.1, 0.2])


def test_a_batch_that_fails_is_retried_without_the_batches_that_went_through(
    client: "EventBridgeClient", stubbed: Stubber, log: logging.Logger, reports: Reports
) -> None:
    events = [completion_recorded() for _ in range(12)]
    stubbed.add_response("put_events", accepted(10), entries(events[:10]))
    stubbed.add_client_error(
        "put_events", "ThrottlingException", "Rate exceeded", 400, expected_params=entries(events[10:])
    )
    stubbed.add_response("put_events", accepted(2), entries(events[10:]))

    publisher_for(client, log, reports).publish(events)

    assert reports == Reports(sleeps=[0.1])


def test_events_that_keep_failing_are_logged_and_counted_without_raising(
    client: "EventBridgeClient",
    stubbed: Stubber,
    log: logging.Logger,
    reports: Reports,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [completion_recorded(), completion_recorded()]
    internal = {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal failure"}
    for _ in range(4):
        stubbed.add_response("put_events", {"FailedEntryCount": 2, "Entries": [internal, internal]}, entries(events))

    publisher_for(client, log, reports).publish(events)

    # the outbox (down here) is tried twice too
    assert reports == Reports(sleeps=[0.1, 0.2, 0.4, 0.1], not_published=[2])
    assert failures_logged(caplog) == [
        (str(event.event_id), "CompletionRecorded", "InternalFailure") for event in events
    ]


def test_a_failure_log_names_the_event_and_never_holds_its_detail(
    client: "EventBridgeClient", stubbed: Stubber, reports: Reports, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the handler's own logger, Powertools', which writes JSON lines
    event = completion_recorded(connection_name="billing-prod")
    stubbed.add_client_error(
        "put_events", "AccessDeniedException", "not authorized", 400, expected_params=entries([event])
    )

    publisher_for(client, Logger(service="events-test"), reports).publish([event])

    (line,) = capsys.readouterr().out.splitlines()
    logged = json.loads(line)
    assert (logged["level"], logged["message"]) == ("ERROR", "event not published")
    assert (logged["event_id"], logged["detail_type"], logged["error_code"]) == (
        str(event.event_id),
        "CompletionRecorded",
        "AccessDeniedException",
    )
    assert "billing-prod" not in line


@pytest.mark.parametrize(
    "refusal",
    [
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}]},
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "No"}]},
    ],
)
def test_an_entry_eventbridge_will_never_take_is_not_retried(
    client: "EventBridgeClient", stubbed: Stubber, log: logging.Logger, reports: Reports, refusal: dict[str, Any]
) -> None:
    event = completion_recorded()
    stubbed.add_response("put_events", refusal, entries([event]))

    publisher_for(client, log, reports).publish([event])

    assert reports == Reports(not_published=[1])


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_a_missing_permission_or_bus_is_not_retried(
    client: "EventBridgeClient",
    stubbed: Stubber,
    log: logging.Logger,
    reports: Reports,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    events = one_of_each()
    stubbed.add_client_error("put_events", code, "no", 400, expected_params=entries(events))

    publisher_for(client, log, reports).publish(events)

    assert reports == Reports(not_published=[len(events)])
    assert [logged[2] for logged in failures_logged(caplog)] == [code] * len(events)


def test_an_unreachable_endpoint_is_retried_then_reported(log: logging.Logger, reports: Reports) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = boto3.client(
        "events",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )

    publisher_for(client, log, reports).publish([completion_recorded()])

    assert reports == Reports(sleeps=[0.1, 0.2, 0.4, 0.1], not_published=[1])


def test_events_the_bus_keeps_refusing_go_to_the_outbox_with_their_ids_and_nothing_is_lost(
    client: "EventBridgeClient",
    stubbed: Stubber,
    log: logging.Logger,
    reports: Reports,
    outbox: KeptEntries,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [completion_recorded(), completion_recorded(), completion_recorded()]
    # the first goes through at once; the other two keep failing
    internal = {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal failure"}
    stubbed.add_response(
        "put_events", {"FailedEntryCount": 2, "Entries": [{"EventId": "1"}, internal, internal]}, entries(events)
    )
    for _ in range(3):
        stubbed.add_response(
            "put_events", {"FailedEntryCount": 2, "Entries": [internal, internal]}, entries(events[1:])
        )

    publisher_for(client, log, reports, outbox).publish(events)

    assert reports == Reports(sleeps=[0.1, 0.2, 0.4], deferred=[2])
    assert [json.loads(entry["Detail"])["eventId"] for entry in outbox.entries] == [
        str(event.event_id) for event in events[1:]
    ]
    assert failures_logged(caplog) == []


def test_an_entry_eventbridge_will_never_take_is_not_kept_for_later(
    client: "EventBridgeClient", stubbed: Stubber, log: logging.Logger, reports: Reports, outbox: KeptEntries
) -> None:
    event = completion_recorded()
    refusal = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "MalformedDetail", "ErrorMessage": "no"}]}
    stubbed.add_response("put_events", refusal, entries([event]))

    publisher_for(client, log, reports, outbox).publish([event])

    assert (reports.not_published, outbox.entries) == ([1], [])

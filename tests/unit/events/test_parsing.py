"""Reading a delivered event back into its typed detail, as a consumer behind an SQS queue does."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tests.unit.events.samples import completion_recorded, delivered, one_of_each, rate_limits_observed
from vmx.events.models import EventDetail, InvalidEvent, RateLimitsObserved, UnknownEventType, parse_event


@pytest.mark.parametrize("event", one_of_each(), ids=lambda event: event.detail_type)
def test_every_event_reads_back_as_it_was_published(event: EventDetail) -> None:
    received = parse_event(delivered(event))

    assert received.detail == event
    assert type(received.detail) is type(event)
    assert received.detail_type == event.detail_type
    assert (received.account, received.region) == ("123456789012", "us-east-1")
    assert received.id == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert received.time == datetime(2026, 11, 22, 12, 0, 1, tzinfo=UTC)


def test_the_local_emulators_events_have_no_account() -> None:
    event = completion_recorded()

    received = parse_event(delivered(event, without=("account",)))

    assert received.account is None
    assert received.detail == event


def test_a_lambda_targets_event_is_already_a_dict() -> None:
    event = completion_recorded()

    assert parse_event(json.loads(delivered(event))).detail == event


def test_an_epoch_time_is_read_too() -> None:
    # moto's envelope carries the entry's Time as seconds since the epoch
    published_at = datetime(2026, 11, 22, 12, 0, 1, tzinfo=UTC)

    received = parse_event(delivered(completion_recorded(), {"time": published_at.timestamp()}))

    assert received.time == published_at


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not an EventBridge event"),
        ("[1, 2]", "not an EventBridge event"),
        (json.dumps({"source": "vmx.ai-connections"}), "detail-type: Field required"),
    ],
)
def test_what_is_not_an_event_is_invalid(body: str, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_event(body)


def test_another_source_is_unknown() -> None:
    with pytest.raises(UnknownEventType, match=r"source 'aws\.s3'"):
        parse_event(delivered(completion_recorded(), {"source": "aws.s3"}))


def test_an_unknown_detail_type_is_unknown() -> None:
    with pytest.raises(UnknownEventType, match="unknown detail-type 'ConnectionRenamed'"):
        parse_event(delivered(completion_recorded(), {"detail-type": "ConnectionRenamed"}))


def test_fields_a_later_v1_publisher_adds_are_ignored() -> None:
    event = rate_limits_observed()
    detail = event.model_dump(mode="json")
    detail["region"] = "eu-west-1"
    detail["capacity"][0]["concurrentRequests"] = 8

    assert parse_event(delivered(event, {"detail": detail})).detail == event


def test_what_we_publish_has_no_unknown_field() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        RateLimitsObserved.model_validate({**rate_limits_observed().model_dump(), "region": "eu-west-1"})


def test_a_later_version_is_unknown_rather_than_invalid() -> None:
    detail = {**completion_recorded().model_dump(mode="json"), "version": "2", "newField": 1}

    with pytest.raises(UnknownEventType, match="CompletionRecorded version '2' is not understood"):
        parse_event(delivered(completion_recorded(), {"detail": detail}))


def test_a_detail_without_a_version_is_invalid() -> None:
    detail = completion_recorded().model_dump(mode="json")
    del detail["version"]

    with pytest.raises(InvalidEvent, match="version: Field required"):
        parse_event(delivered(completion_recorded(), {"detail": detail}))


def test_an_invalid_detail_says_where_without_repeating_it() -> None:
    detail = {**completion_recorded().model_dump(mode="json"), "promptTokens": "sk-looks-secret"}

    with pytest.raises(InvalidEvent, match="invalid CompletionRecorded detail: promptTokens") as raised:
        parse_event(delivered(completion_recorded(), {"detail": detail}))

    assert "sk-looks-secret" not in str(raised.value)
    assert not isinstance(raised.value, UnknownEventType)


def test_a_detail_of_another_type_is_invalid() -> None:
    detail = completion_recorded().model_dump(mode="json")

    with pytest.raises(InvalidEvent, match="invalid ConnectionCreated detail"):
        parse_event(delivered(completion_recorded(), {"detail-type": "ConnectionCreated", "detail": detail}))

"""Event details on the wire: camelCase, strict, versioned, UTC, and never more than their schema says."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tests.unit.events.samples import (
    IDS,
    OCCURRED_AT,
    capacity_refusal,
    completion_recorded,
    connection,
    connection_change,
    one_of_each,
    rate_limits_observed,
)
from vmx.events.models import (
    EVENT_SOURCE,
    ConnectionCreated,
    ConnectionDeleted,
    ConnectionUpdated,
    DetailType,
    ObservedCapacity,
    RefusedLimit,
    put_events_entry,
)


def test_details_are_camel_case_and_carry_the_common_fields() -> None:
    detail = json.loads(completion_recorded().model_dump_json())

    assert detail == {
        "version": "1",
        "eventId": detail["eventId"],
        "occurredAt": "2026-11-22T12:00:01.250000Z",
        "workspaceId": IDS["workspace_id"],
        "environmentId": IDS["environment_id"],
        "connectionId": IDS["connection_id"],
        "connectionName": "openai-prod",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": 200,
        "promptTokens": 12,
        "completionTokens": 7,
        "latencyMs": 412,
        "refusedByCapacity": False,
        "refusedLimit": None,
        "errorCode": None,
        "stream": False,
        "streamEnd": None,
        "usageEstimated": False,
        "priorityClass": None,
    }
    assert uuid.UUID(detail["eventId"]).version == 4


def test_each_event_gets_its_own_id_which_copies_keep() -> None:
    first, second = completion_recorded(), completion_recorded()

    assert first.event_id != second.event_id
    assert first.model_copy().event_id == first.event_id


def test_occurred_at_is_stored_in_utc() -> None:
    paris = timezone(timedelta(hours=1))

    event = completion_recorded(occurred_at=datetime(2026, 11, 22, 13, 0, 1, 250000, tzinfo=paris))

    assert event.occurred_at == OCCURRED_AT
    assert event.occurred_at.tzinfo is not None and event.occurred_at.utcoffset() == timedelta(0)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        completion_recorded(occurred_at=datetime(2026, 11, 22, 12, 0))


def test_only_version_1_exists() -> None:
    with pytest.raises(ValidationError):
        completion_recorded(version="2")


def test_observed_capacity_leaves_out_the_kinds_a_provider_did_not_report() -> None:
    openai = ObservedCapacity(period="minute", requests=10000, tokens=30000000)
    anthropic = rate_limits_observed().capacity[0]

    assert openai.model_dump(mode="json") == {"period": "minute", "requests": 10000, "tokens": 30000000}
    assert anthropic.model_dump(mode="json") == {
        "period": "minute",
        "requests": 4000,
        "tokens": 480000,
        "inputTokens": 400000,
        "outputTokens": 80000,
    }


def test_an_observed_window_reports_something() -> None:
    with pytest.raises(ValidationError, match="at least one limit"):
        ObservedCapacity(period="day", requests=None, tokens=None)


@pytest.mark.parametrize("limit", [-1, 1.5, "100", True])
def test_limits_are_whole_non_negative_numbers(limit: object) -> None:
    with pytest.raises(ValidationError):
        ObservedCapacity(period="minute", requests=limit, tokens=None)


def test_a_capacity_refusal_names_its_limit() -> None:
    refusal = json.loads(capacity_refusal().model_dump_json())

    assert refusal["refusedByCapacity"] is True
    assert refusal["refusedLimit"] == {
        "period": "minute",
        "kind": "requests",
        "limit": 100,
        "dimension": None,
        "priorityClass": None,
        "share": None,
    }


@pytest.mark.parametrize(
    ("refused", "limit"),
    [(True, None), (False, RefusedLimit(period="day", kind="tokens", limit=5, dimension="source-ip"))],
)
def test_refused_by_capacity_and_refused_limit_go_together(refused: bool, limit: RefusedLimit | None) -> None:
    with pytest.raises(ValidationError, match="refusedLimit is given exactly when"):
        completion_recorded(refused_by_capacity=refused, refused_limit=limit)


def test_unknown_fields_are_refused_so_config_cannot_ride_along() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        connection_change(ConnectionCreated, config={"apiKey": "sk-secret"})


@pytest.mark.parametrize("kind", [ConnectionCreated, ConnectionUpdated, ConnectionDeleted])
def test_connection_events_carry_metadata_only(kind: type[ConnectionCreated]) -> None:
    stored = connection()

    event = kind.of(stored, actor="key-editor", occurred_at=OCCURRED_AT)

    detail = json.loads(event.model_dump_json())
    assert set(detail) == {
        "version",
        "eventId",
        "occurredAt",
        "workspaceId",
        "environmentId",
        "connectionId",
        "name",
        "provider",
        "connectionVersion",
        "actor",
    }
    assert (detail["name"], detail["provider"], detail["connectionVersion"]) == ("openai-prod", "openai", 3)
    assert detail["actor"] == "key-editor"
    assert "c2stc2VjcmV0" not in event.model_dump_json()


def test_each_event_has_its_own_detail_type() -> None:
    assert [event.detail_type for event in one_of_each()] == [
        DetailType.RATE_LIMITS_OBSERVED,
        DetailType.COMPLETION_RECORDED,
        DetailType.COMPLETION_RECORDED,
        DetailType.CONNECTION_CREATED,
        DetailType.CONNECTION_UPDATED,
        DetailType.CONNECTION_DELETED,
    ]


def test_a_put_events_entry_carries_the_detail_as_json() -> None:
    event = rate_limits_observed()

    entry = put_events_entry(event, "vmx-events")

    assert entry == {
        "Source": EVENT_SOURCE,
        "DetailType": "RateLimitsObserved",
        "Detail": event.model_dump_json(),
        "EventBusName": "vmx-events",
        "Time": OCCURRED_AT,
    }

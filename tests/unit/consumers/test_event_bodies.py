"""Which message bodies the consumers can never process: those are PoisonMessage, the rest is read."""

import json
from typing import Any

import pytest

from tests.unit.consumers.events import (
    NOW,
    completed,
    completion_detail,
    eventbridge_body,
    observed,
    rate_limits_detail,
)
from tests.unit.consumers.fakes import InMemoryDiscoveredCapacity, InMemoryUsageStatistics
from vmx.consumers.discovered import RATE_LIMITS_OBSERVED, handle_rate_limits_observed
from vmx.consumers.envelope import PoisonMessage
from vmx.consumers.usage import COMPLETION_RECORDED, handle_completion_recorded
from vmx.consumers.usage_stats import Granularity


def poison_reason(body: str) -> str:
    with pytest.raises(PoisonMessage) as caught:
        handle_rate_limits_observed(body, InMemoryDiscoveredCapacity())
    return str(caught.value)


def without(detail: dict[str, Any], field: str) -> dict[str, Any]:
    return {name: value for name, value in detail.items() if name != field}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not an EventBridge event"),
        ("[1, 2]", "not an EventBridge event"),
        (json.dumps({"detail-type": RATE_LIMITS_OBSERVED}), "detail: Field required"),
        (json.dumps({"detail": rate_limits_detail()}), "detail-type: Field required"),
        (
            eventbridge_body(COMPLETION_RECORDED, rate_limits_detail()),
            "'CompletionRecorded' event, not a RateLimitsObserved",
        ),
        (
            eventbridge_body(RATE_LIMITS_OBSERVED, without(rate_limits_detail(), "model")),
            "invalid RateLimitsObserved detail: model",
        ),
        (observed(capacity=[]), "capacity: List should have at least 1 item"),
        (observed(capacity=[{"period": "fortnight", "requests": 1, "tokens": 1}]), "capacity.0.period"),
        (observed(occurredAt="2025-03-14T12:30:15"), "occurredAt: Input should have timezone info"),
    ],
    ids=[
        "invalid-json",
        "not-an-object",
        "no-detail-type",
        "no-detail",
        "other-type",
        "no-model",
        "no-limits",
        "bad-period",
        "naive-time",
    ],
)
def test_bodies_that_no_retry_can_process_are_poison(body: str, reason: str) -> None:
    assert reason in poison_reason(body)


def test_a_poison_reason_never_repeats_the_values_it_refused() -> None:
    reason = poison_reason(observed(model={"secret-looking": "sk-do-not-log"}))

    assert "sk-do-not-log" not in reason


def test_an_event_without_account_and_with_fields_this_code_does_not_read_is_processed() -> None:
    writer = InMemoryDiscoveredCapacity()
    body = observed(connectionId="conn-1", futureField={"anything": 1})
    assert "account" not in json.loads(body)

    handle_rate_limits_observed(body, writer)

    assert writer.discovered_capacity("ws-1", "env-1", "conn-1") is not None


def test_a_completion_is_counted_once_however_often_it_is_delivered() -> None:
    usage = InMemoryUsageStatistics()
    body = completed("conn-1")

    handle_completion_recorded(body, usage, NOW)
    handle_completion_recorded(body, usage, NOW)

    (bucket,) = usage.series("conn-1", Granularity.DAY, NOW, NOW.replace(hour=23))
    assert bucket.requests == 1


def test_a_completion_detail_with_a_bad_count_is_poison() -> None:
    with pytest.raises(PoisonMessage, match="promptTokens"):
        handle_completion_recorded(
            eventbridge_body(COMPLETION_RECORDED, completion_detail(promptTokens=-1)), InMemoryUsageStatistics(), NOW
        )

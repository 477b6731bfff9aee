"""When observed limits are news, and how the consumer records them in discoveredCapacity."""

from datetime import timedelta
from typing import Any

import pytest

from tests.loopback_providers import ANTHROPIC_RATE_LIMIT_HEADERS, OPENAI_RATE_LIMIT_HEADERS
from tests.unit.events.samples import OCCURRED_AT, connection
from vmx.capacity.limits import CapacityPeriod
from vmx.discovery.headers import ObservedLimit
from vmx.discovery.observations import differs
from vmx.discovery.observations import rate_limits_observed as observation_of
from vmx.events.models import ObservedCapacity, RateLimitsObserved

MINUTE, DAY = CapacityPeriod.MINUTE, CapacityPeriod.DAY
OPENAI_LIMITS = [ObservedLimit(MINUTE, requests=10000, tokens=30000000)]


def shown(model: str, *capacity: dict[str, Any]) -> dict[str, Any]:
    return {
        "models": {
            model: {"capacity": list(capacity), "observedAt": "2026-11-22T11:00:00Z", "source": "response-headers"}
        }
    }


def test_limits_differ_from_nothing_shown() -> None:
    assert differs(OPENAI_LIMITS, None, "gpt-4o")
    assert differs(OPENAI_LIMITS, {"models": {}}, "gpt-4o")


def test_the_same_limits_do_not_differ() -> None:
    stored = shown("gpt-4o", {"period": "minute", "requests": 10000, "tokens": 30000000})

    assert not differs(OPENAI_LIMITS, stored, "gpt-4o")


def test_another_models_limits_do_not_count() -> None:
    stored = shown("gpt-4o-mini", {"period": "minute", "requests": 10000, "tokens": 30000000})

    assert differs(OPENAI_LIMITS, stored, "gpt-4o")


@pytest.mark.parametrize(
    "capacity",
    [
        [{"period": "minute", "requests": 5000, "tokens": 30000000}],
        [{"period": "minute", "requests": 10000, "tokens": None}],
        [{"period": "day", "requests": 10000, "tokens": 30000000}],
        [{"period": "minute", "requests": 10000, "tokens": 30000000, "inputTokens": 1}],
        [
            {"period": "minute", "requests": 10000, "tokens": 30000000},
            {"period": "day", "requests": 1, "tokens": None},
        ],
    ],
)
def test_any_change_differs(capacity: list[dict[str, Any]]) -> None:
    assert differs(OPENAI_LIMITS, shown("gpt-4o", *capacity), "gpt-4o")


def test_order_does_not_matter() -> None:
    groq = [ObservedLimit(MINUTE, tokens=6000), ObservedLimit(DAY, requests=14400)]
    stored = shown(
        "llama-3.1-8b-instant",
        {"period": "day", "requests": 14400, "tokens": None},
        {"period": "minute", "requests": None, "tokens": 6000},
    )

    assert not differs(groq, stored, "llama-3.1-8b-instant")


@pytest.mark.parametrize(
    "stored",
    [
        {"models": []},
        {"models": {"gpt-4o": {"capacity": "lots"}}},
        {"models": {"gpt-4o": {"capacity": [{"period": "fortnight", "requests": 1}]}}},
        {"something": "else"},
    ],
)
def test_what_cannot_be_read_differs(stored: dict[str, Any]) -> None:
    assert differs(OPENAI_LIMITS, stored, "gpt-4o")


def test_new_limits_make_an_event_for_the_connection_and_model() -> None:
    event = observation_of(connection(), "gpt-4o", OPENAI_RATE_LIMIT_HEADERS, OCCURRED_AT)

    assert event is not None
    assert (event.connection_id, event.connection_name, event.provider, event.model) == (
        connection().connection_id,
        "openai-prod",
        "openai",
        "gpt-4o",
    )
    assert event.capacity == [ObservedCapacity(period=MINUTE, requests=10000, tokens=30000000)]
    assert event.source == "response-headers"
    assert event.occurred_at == OCCURRED_AT


def test_limits_the_connection_already_shows_make_no_event() -> None:
    stored = shown("gpt-4o", {"period": "minute", "requests": 10000, "tokens": 30000000})

    assert (
        observation_of(connection(discovered_capacity=stored), "gpt-4o", OPENAI_RATE_LIMIT_HEADERS, OCCURRED_AT) is None
    )


def test_headers_that_report_nothing_make_no_event() -> None:
    assert observation_of(connection(provider="gemini"), "gemini-2.5-flash", {}, OCCURRED_AT) is None


def test_once_recorded_the_same_headers_are_no_longer_news() -> None:
    # Given an Anthropic connection that has shown nothing yet
    anthropic = connection(provider="anthropic")
    event = observation_of(anthropic, "claude-sonnet-4-5", ANTHROPIC_RATE_LIMIT_HEADERS, OCCURRED_AT)
    assert event is not None

    # When the consumer records the event
    updated = anthropic.model_copy(update={"discovered_capacity": as_recorded(event)})

    # Then the next response with the same headers publishes nothing
    later = OCCURRED_AT + timedelta(seconds=5)
    assert observation_of(updated, "claude-sonnet-4-5", ANTHROPIC_RATE_LIMIT_HEADERS, later) is None


def test_groqs_two_windows_once_recorded_are_no_longer_news() -> None:
    groq = connection(provider="groq")
    event = observation_of(groq, "llama-3.1-8b-instant", OPENAI_RATE_LIMIT_HEADERS, OCCURRED_AT)
    assert event is not None

    updated = groq.model_copy(update={"discovered_capacity": as_recorded(event)})

    assert observation_of(updated, "llama-3.1-8b-instant", OPENAI_RATE_LIMIT_HEADERS, OCCURRED_AT) is None


def test_limits_absent_or_null_in_the_record_read_the_same() -> None:
    with_nulls = shown("gpt-4o", {"period": "minute", "requests": 10000, "tokens": None, "inputTokens": None})
    without = shown("gpt-4o", {"period": "minute", "requests": 10000})

    assert not differs([ObservedLimit(MINUTE, requests=10000)], with_nulls, "gpt-4o")
    assert not differs([ObservedLimit(MINUTE, requests=10000)], without, "gpt-4o")


def as_recorded(event: RateLimitsObserved) -> dict[str, Any]:
    """The event as the connection shows it once recorded: the limits reported, observedAt, source."""
    capacity = [limit.model_dump(mode="json", exclude_none=True) for limit in event.capacity]
    recorded = {"capacity": capacity, "observedAt": event.occurred_at.isoformat(), "source": event.source}
    return {"models": {event.model: recorded}}

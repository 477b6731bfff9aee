"""Capacity limits as a connection stores them: one entry per (period, dimension) window."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tests.unit.builders import create_request
from vmx.capacity.limits import MAX_LIMIT, Capacity, CapacityDimension, CapacityEntry, CapacityPeriod
from vmx.connections.models import ConnectionCreate, ConnectionPatch

CAPACITY: TypeAdapter[list[CapacityEntry]] = TypeAdapter(Capacity)
PERIODS = ["minute", "hour", "day", "week", "month", "lifetime"]


def entry(**fields: Any) -> dict[str, Any]:
    return {"period": "minute", "requests": 100, **fields}


def test_the_documented_example_is_accepted() -> None:
    capacity = CAPACITY.validate_python(
        [
            {"period": "minute", "requests": 100, "tokens": 100000},
            {"period": "hour", "requests": 5000, "tokens": 5000000},
            {"period": "day", "requests": 100000, "tokens": 100000000},
        ]
    )

    assert [(item.period, item.requests, item.tokens) for item in capacity] == [
        (CapacityPeriod.MINUTE, 100, 100000),
        (CapacityPeriod.HOUR, 5000, 5000000),
        (CapacityPeriod.DAY, 100000, 100000000),
    ]


@pytest.mark.parametrize("period", PERIODS)
def test_every_lowercase_period_is_accepted(period: str) -> None:
    assert CAPACITY.validate_python([entry(period=period)])[0].period.value == period


@pytest.mark.parametrize("period", ["Minute", "MINUTE", "second", "minutes", "", 60])
def test_other_periods_are_refused(period: object) -> None:
    with pytest.raises(ValidationError) as caught:
        CAPACITY.validate_python([entry(period=period)])

    assert [error["loc"] for error in caught.value.errors()] == [(0, "period")]


@pytest.mark.parametrize("field", ["requests", "tokens"])
@pytest.mark.parametrize("value", ["100", 1.5, 100.0, True, False, -1, MAX_LIMIT + 1, [100]])
def test_limits_are_non_negative_strict_integers(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        CAPACITY.validate_python([{"period": "minute", field: value}])

    assert (0, field) in [error["loc"] for error in caught.value.errors()]


@pytest.mark.parametrize("field", ["requests", "tokens"])
@pytest.mark.parametrize("value", [0, 1, MAX_LIMIT])
def test_limits_accept_zero_up_to_the_maximum(field: str, value: int) -> None:
    [item] = CAPACITY.validate_python([{"period": "minute", field: value}])

    assert getattr(item, field) == value


@pytest.mark.parametrize("limits", [{}, {"requests": None}, {"tokens": None}, {"requests": None, "tokens": None}])
def test_an_entry_must_limit_requests_or_tokens(limits: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="give requests, tokens or both"):
        CAPACITY.validate_python([{"period": "hour", **limits}])


def test_enabled_defaults_to_true_and_can_be_turned_off() -> None:
    on, off = CAPACITY.validate_python([entry(period="minute"), entry(period="hour", enabled=False)])

    assert (on.enabled, off.enabled) == (True, False)


@pytest.mark.parametrize("enabled", ["true", 1, None])
def test_enabled_is_a_strict_boolean(enabled: object) -> None:
    with pytest.raises(ValidationError):
        CAPACITY.validate_python([entry(enabled=enabled)])


def test_dimension_is_absent_or_source_ip() -> None:
    without, by_ip = CAPACITY.validate_python([entry(), entry(dimension="source-ip")])

    assert (without.dimension, by_ip.dimension) == (None, CapacityDimension.SOURCE_IP)


@pytest.mark.parametrize("dimension", ["SOURCE-IP", "source_ip", "user", ""])
def test_other_dimensions_are_refused(dimension: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CAPACITY.validate_python([entry(dimension=dimension)])

    assert [error["loc"] for error in caught.value.errors()] == [(0, "dimension")]


def test_unknown_entry_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        CAPACITY.validate_python([entry(burst=10)])

    assert [error["loc"] for error in caught.value.errors()] == [(0, "burst")]


@pytest.mark.parametrize(
    "entries",
    [
        [entry(period="minute"), entry(period="minute", tokens=5)],
        [entry(period="day", dimension="source-ip"), entry(period="day", dimension="source-ip", enabled=False)],
    ],
)
def test_two_entries_for_one_window_are_refused(entries: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError, match="2 entries for period"):
        CAPACITY.validate_python(entries)


def test_one_period_with_and_without_a_dimension_is_two_windows() -> None:
    capacity = CAPACITY.validate_python([entry(period="minute"), entry(period="minute", dimension="source-ip")])

    assert [(item.period, item.dimension) for item in capacity] == [
        (CapacityPeriod.MINUTE, None),
        (CapacityPeriod.MINUTE, CapacityDimension.SOURCE_IP),
    ]


def test_capacity_defaults_to_no_limits_on_create() -> None:
    request = ConnectionCreate.model_validate({"name": "c", "provider": "openai", "config": {}})

    assert request.capacity == []


@st.composite
def capacity_entries(draw: st.DrawFn) -> list[dict[str, Any]]:
    windows = draw(
        st.lists(
            st.tuples(st.sampled_from(PERIODS), st.sampled_from([None, "source-ip"])),
            unique=True,
            max_size=len(PERIODS) * 2,
        )
    )
    limit = st.integers(min_value=0, max_value=MAX_LIMIT)
    entries = []
    for period, dimension in windows:
        requests, tokens = draw(
            st.one_of(
                st.tuples(limit, st.none()),
                st.tuples(st.none(), limit),
                st.tuples(limit, limit),
            )
        )
        item: dict[str, Any] = {"period": period}
        if requests is not None:
            item["requests"] = requests
        if tokens is not None:
            item["tokens"] = tokens
        if dimension is not None:
            item["dimension"] = dimension
        enabled = draw(st.sampled_from([None, True, False]))
        if enabled is not None:
            item["enabled"] = enabled
        entries.append(item)
    return entries


@settings(max_examples=60, deadline=None)
@given(capacity_entries())
def test_entries_for_distinct_windows_validate_and_round_trip(entries: list[dict[str, Any]]) -> None:
    # Given entries with distinct (period, dimension) windows
    # When they are validated, dumped as JSON and validated again
    capacity = CAPACITY.validate_python(entries)
    dumped = CAPACITY.dump_python(capacity, mode="json")

    # Then nothing is lost
    assert CAPACITY.validate_python(dumped) == capacity
    assert [(item.period.value, item.dimension and item.dimension.value) for item in capacity] == [
        (raw["period"], raw.get("dimension")) for raw in entries
    ]
    assert [item.enabled for item in capacity] == [raw.get("enabled", True) for raw in entries]


@settings(max_examples=30, deadline=None)
@given(capacity_entries())
def test_capacity_round_trips_through_the_request_models(entries: list[dict[str, Any]]) -> None:
    request = create_request(capacity=entries)
    update = ConnectionPatch.model_validate({"capacity": entries})

    update_again = ConnectionPatch.model_validate(update.model_dump(mode="json", exclude_unset=True))
    assert ConnectionCreate.model_validate(request.model_dump(mode="json")) == request
    assert (update_again, update_again.model_fields_set) == (update, {"capacity"})


@settings(max_examples=40, deadline=None)
@given(capacity_entries().filter(lambda entries: 0 < len(entries) < len(PERIODS) * 2), st.data())
def test_repeating_any_window_is_refused(entries: list[dict[str, Any]], data: st.DataObject) -> None:
    repeated = data.draw(st.sampled_from(entries))
    position = data.draw(st.integers(min_value=0, max_value=len(entries)))

    with pytest.raises(ValidationError, match="2 entries for period"):
        CAPACITY.validate_python([*entries[:position], dict(repeated), *entries[position:]])

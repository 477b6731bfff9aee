"""A settlement kept for later survives its trip through the queue whole, and a body that is not one is
refused for good without quoting it."""

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from tests.capacity_fakes import InMemoryCapacityCounters
from vmx.capacity.ledger import CounterScope, Reservation, Split
from vmx.capacity.limits import CapacityPeriod
from vmx.capacity.settlements import DeferredSettlement
from vmx.consumers.capacity_settlements import apply_deferred_settlement
from vmx.consumers.envelope import PoisonMessage

RESERVATION_TIME = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RESERVATION = Reservation(
    scope=CounterScope("conn-1", "203.0.113.9"),
    request_id="0f1e2d3c",
    windows={CapacityPeriod.MINUTE: "1796601600", CapacityPeriod.LIFETIME: "0"},
    tokens=4100,
    usage=(),
    orphans=("q_old",),
)


@pytest.mark.parametrize("actual_tokens", [None, 0, 19])
def test_a_settlement_reads_back_as_it_was_written(actual_tokens: int | None) -> None:
    settlement = DeferredSettlement(RESERVATION, actual_tokens)

    assert DeferredSettlement.from_json(settlement.to_json()) == settlement


def test_a_class_reservation_keeps_its_class_and_splits_through_the_queue() -> None:
    in_class = dataclasses.replace(RESERVATION, priority_class="batch", splits={CapacityPeriod.MINUTE: Split(1, 4000)})
    settlement = DeferredSettlement(in_class, 12)

    assert DeferredSettlement.from_json(settlement.to_json()) == settlement


def test_a_settlement_without_a_class_is_written_as_before_classes_existed() -> None:
    written = json.loads(DeferredSettlement(RESERVATION, 19).to_json())

    # what a consumer from before priority classes reads (its model refuses fields it does not know)
    assert written == {
        "version": 1,
        "connection_id": "conn-1",
        "source_ip": "203.0.113.9",
        "request_id": "0f1e2d3c",
        "windows": {"minute": "1796601600", "lifetime": "0"},
        "tokens": 4100,
        "orphans": ["q_old"],
        "actual_tokens": 19,
    }


def test_a_class_reservation_is_version_2_and_carries_its_class() -> None:
    in_class = dataclasses.replace(RESERVATION, priority_class="batch", splits={CapacityPeriod.MINUTE: Split(0, 9)})

    written = json.loads(DeferredSettlement(in_class, None).to_json())

    assert (written["version"], written["priority_class"]) == (2, "batch")
    assert written["splits"] == {"minute": {"requests": 0, "tokens": 9}}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("not json", "body"),
        (json.dumps({"connection_id": "c"}), "request_id"),
        (
            DeferredSettlement(RESERVATION, 19).to_json().replace('"actual_tokens":19', '"actual_tokens":-1'),
            "actual_tokens",
        ),
        (DeferredSettlement(RESERVATION, 19).to_json().replace('"minute"', '"fortnight"'), "windows"),
        # a class without its version, or a version 2 without its class
        (DeferredSettlement(RESERVATION, 19).to_json().replace('"version":1', '"version":2'), "body"),
    ],
)
def test_a_body_that_is_no_settlement_is_poison_named_by_its_fields_without_its_values(body: str, named: str) -> None:
    with pytest.raises(PoisonMessage) as refused:
        apply_deferred_settlement(body, InMemoryCapacityCounters(), RESERVATION_TIME)

    assert named in str(refused.value)
    assert "203.0.113.9" not in str(refused.value)

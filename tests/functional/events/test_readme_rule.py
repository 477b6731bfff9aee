"""The rule pattern docs/events/README.md shows, on moto's EventBridge: it catches what it says it catches."""

import logging

from tests.functional.events.conftest import Bus, Reports, publisher_for
from tests.unit.events.samples import documented, one_of_each


def test_the_documented_rule_receives_capacity_refusals_only(bus: Bus, log: logging.Logger, reports: Reports) -> None:
    [(_, pattern)] = documented("rule")
    refusals = bus.subscribe("capacity-refusals", pattern)
    events = one_of_each()

    publisher_for(bus.events, log, reports).publish(events)

    expected = [event for event in events if getattr(event, "refused_by_capacity", False)]
    assert len(expected) == 1
    assert [received.detail for received in Bus.received(refusals)] == expected

"""docs/events/README.md: its examples are events this code reads, and it names what exists."""

import json

import pytest

from tests.unit.discovery.samples import GROQ_HEADERS
from tests.unit.events.samples import EVENTS_README, connection, delivered, documented
from vmx.aws.event_bus import RetryPolicy
from vmx.discovery.observations import rate_limits_observed
from vmx.events.models import DETAILS, EVENT_SOURCE, RateLimitsObserved, parse_event
from vmx.events.schemas import file_name


def test_the_envelope_example_is_an_event_this_code_reads() -> None:
    [(_, envelope)] = documented("envelope")

    received = parse_event(json.dumps(envelope))

    assert received.detail.model_dump(mode="json") == envelope["detail"]


@pytest.mark.parametrize(("detail_type", "detail"), documented("detail"))
def test_each_detail_example_is_valid_and_complete(detail_type: str, detail: dict[str, object]) -> None:
    kind = DETAILS[detail_type]

    example = kind.model_validate(detail)

    assert parse_event(delivered(example)).detail.model_dump(mode="json") == detail


def test_the_groq_example_is_what_groqs_headers_make() -> None:
    [detail] = [detail for detail_type, detail in documented("detail") if detail_type == "RateLimitsObserved"]
    example = RateLimitsObserved.model_validate(detail)
    groq = connection(provider="groq", name=example.connection_name)

    observed = rate_limits_observed(groq, example.model, GROQ_HEADERS, example.occurred_at)

    assert observed is not None
    assert observed.capacity == example.capacity


def test_every_detail_type_and_its_schema_are_listed() -> None:
    readme = EVENTS_README.read_text()

    for kind in DETAILS.values():
        assert f"| `{kind.detail_type}` | [v1]({file_name(kind)}) |" in readme
    assert f"`{EVENT_SOURCE}`" in readme


def test_the_retry_time_it_states_is_the_default_policy() -> None:
    assert sum(RetryPolicy().delays()) == pytest.approx(0.7)
    assert "about 0.7 s" in EVENTS_README.read_text()

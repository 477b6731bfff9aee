"""GET .../ai-connections/{connectionId}/usage through the real handler: the range it covers when left out, and
refusals that name the parameter (issue 13, "usage defaults to the last 24 hours")."""

import os
import uuid
from datetime import UTC, datetime, timedelta

from tests.functional.conftest import Tenant
from tests.functional.test_connections_api import OPENAI_SEED, create
from vmx import wiring
from vmx.consumers.inputs import RecordedCompletion
from vmx.settings import UsageSettings


def usage_path(tenant: Tenant, connection_id: str | None = None) -> str:
    connection_id = connection_id or create(tenant, OPENAI_SEED)["connectionId"]
    return f"{tenant.connections_path}/{connection_id}/usage"


def counted(connection_id: str, hours_ago: float) -> None:
    """A completion counted as the usage consumer counts it, `hours_ago`."""
    completion = RecordedCompletion.model_validate(
        {
            "eventId": str(uuid.uuid4()),
            "connectionId": connection_id,
            "occurredAt": (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(),
            "status": 200,
            "promptTokens": 10,
            "completionTokens": 5,
            "latencyMs": 100,
            "refusedByCapacity": False,
        }
    )
    wiring.usage_statistics(UsageSettings.from_environ(os.environ)).record(completion)


def test_left_out_the_range_is_the_last_24_hours_in_hours(tenant: Tenant) -> None:
    connection_id = create(tenant, OPENAI_SEED)["connectionId"]
    counted(connection_id, hours_ago=2)
    counted(connection_id, hours_ago=30)

    response = tenant.api.get(usage_path(tenant, connection_id))

    assert response.status == 200, response.text
    assert response.body["granularity"] == "hour"
    (bucket,) = response.body["buckets"]
    started = datetime.fromisoformat(bucket["start"])
    assert timedelta(hours=1) < datetime.now(UTC) - started <= timedelta(hours=3)


def test_from_alone_runs_to_now_and_to_alone_covers_the_day_before(tenant: Tenant) -> None:
    path = usage_path(tenant)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    assert tenant.api.get(f"{path}?from={an_hour_ago.replace('+', '%2B')}").status == 200
    assert tenant.api.get(f"{path}?to=2026-01-02T00:00:00Z&granularity=day").status == 200


def test_a_from_in_the_future_without_to_is_refused_naming_to(tenant: Tenant) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    response = tenant.api.get(f"{usage_path(tenant)}?from={tomorrow}")

    assert response.status == 400
    assert [detail["field"] for detail in response.error["details"]] == ["to"]


def test_an_unknown_query_parameter_is_refused_naming_it_and_those_taken(tenant: Tenant) -> None:
    response = tenant.api.get(f"{usage_path(tenant)}?form=2026-01-01T00:00:00Z")

    assert response.status == 400
    (detail,) = response.error["details"]
    assert detail["field"] == "form"
    assert detail["message"] == "is not a parameter of this route (it takes from, granularity, to)"

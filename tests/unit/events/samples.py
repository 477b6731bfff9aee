"""One valid event of each type, and the envelope EventBridge delivers it in."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from vmx.connections.models import Connection
from vmx.credentials.sealed import SealedSecret
from vmx.events.models import (
    EVENT_SOURCE,
    CompletionRecorded,
    ConnectionChange,
    ConnectionCreated,
    ConnectionDeleted,
    ConnectionUpdated,
    EventDetail,
    ObservedCapacity,
    RateLimitsObserved,
    RefusedLimit,
)

_C = TypeVar("_C", bound=ConnectionChange)

EVENTS_README = Path(__file__).resolve().parents[3] / "docs" / "events" / "README.md"

OCCURRED_AT = datetime(2026, 11, 22, 12, 0, 1, 250000, tzinfo=UTC)
IDS: dict[str, Any] = {
    "occurred_at": OCCURRED_AT,
    "workspace_id": "9b0f3c1e-2d4a-4e8b-a6f1-0c5d7e9a1b23",
    "environment_id": "4c8e2a6f-1b3d-4f5a-9e7c-2d0b8a6c4e11",
    "connection_id": "e7a1c3b5-9d2f-4a6e-8c0b-1f3d5e7a9c2b",
}


def rate_limits_observed(**fields: Any) -> RateLimitsObserved:
    return RateLimitsObserved.model_validate(
        {
            **IDS,
            "connection_name": "anthropic-prod",
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "capacity": [
                ObservedCapacity(
                    period="minute", requests=4000, tokens=480000, input_tokens=400000, output_tokens=80000
                )
            ],
            "source": "response-headers",
            **fields,
        }
    )


def completion_recorded(**fields: Any) -> CompletionRecorded:
    return CompletionRecorded.model_validate(
        {
            **IDS,
            "connection_name": "openai-prod",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "status": 200,
            "prompt_tokens": 12,
            "completion_tokens": 7,
            "latency_ms": 412,
            "refused_by_capacity": False,
            "refused_limit": None,
            "error_code": None,
            "stream": False,
            **fields,
        }
    )


def capacity_refusal() -> CompletionRecorded:
    return completion_recorded(
        status=429,
        prompt_tokens=0,
        completion_tokens=0,
        latency_ms=18,
        refused_by_capacity=True,
        refused_limit=RefusedLimit(period="minute", kind="requests", limit=100),
        error_code="capacity_exceeded",
    )


def connection_change(kind: type[_C], **fields: Any) -> _C:
    return kind.model_validate(
        {**IDS, "name": "openai-prod", "provider": "openai", "connection_version": 1, "actor": "key-admin", **fields}
    )


def one_of_each() -> list[EventDetail]:
    return [
        rate_limits_observed(),
        completion_recorded(),
        capacity_refusal(),
        connection_change(ConnectionCreated),
        connection_change(ConnectionUpdated, connection_version=2),
        connection_change(ConnectionDeleted, connection_version=2),
    ]


def delivered(event: EventDetail, changes: dict[str, Any] | None = None, without: tuple[str, ...] = ()) -> str:
    """The event as an SQS queue receives it from an EventBridge rule: AWS's envelope, as a message body, with
    some of its fields changed or left out."""
    body: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": event.detail_type.value,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": "2026-11-22T12:00:01Z",
        "region": "us-east-1",
        "resources": [],
        "detail": event.model_dump(mode="json"),
        **(changes or {}),
    }
    return json.dumps({name: value for name, value in body.items() if name not in without})


def connection(**fields: Any) -> Connection:
    """A stored connection with a sealed secret, as the repository returns it."""
    return Connection.model_validate(
        {
            "connection_id": IDS["connection_id"],
            "workspace_id": IDS["workspace_id"],
            "environment_id": IDS["environment_id"],
            "name": "openai-prod",
            "description": None,
            "provider": "openai",
            "settings": {"baseUrl": "https://api.openai.com/v1"},
            "secrets": {"apiKey": SealedSecret(cipher="fake", nonce="bm9uY2U=", ciphertext="c2stc2VjcmV0")},
            "capacity": [],
            "allowed_models": None,
            "version": 3,
            "created_at": OCCURRED_AT,
            "updated_at": OCCURRED_AT,
            "created_by": "key-creator",
            "updated_by": "key-editor",
            "credentials_updated_at": OCCURRED_AT,
            **fields,
        }
    )


def documented(kind: str) -> list[tuple[str, Any]]:
    """The JSON examples docs/events/README.md marks `<!-- events:<kind> [argument] -->`, with their argument."""
    marked = re.compile(rf"<!-- events:{kind}(?: (\w+))? -->\n```json\n(.*?)\n```", re.DOTALL)
    return [(argument, json.loads(block)) for argument, block in marked.findall(EVENTS_README.read_text())]

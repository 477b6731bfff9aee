"""Builders of what the consumers receive: event details, EventBridge events as SQS delivers them, and
SQS batches as Lambda receives them."""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from vmx.consumers.discovered import RATE_LIMITS_OBSERVED
from vmx.consumers.usage import COMPLETION_RECORDED

# a Friday, mid-hour
NOW = datetime(2025, 3, 14, 12, 30, 15, tzinfo=UTC)


def _about(connection_id: str) -> dict[str, Any]:
    """What every detail carries: its identity and time, and the connection and model it is about."""
    return {
        "version": "1",
        "eventId": str(uuid.uuid4()),
        "occurredAt": NOW.isoformat(),
        "workspaceId": "ws-1",
        "environmentId": "env-1",
        "connectionId": connection_id,
        "connectionName": "openai-prod",
        "provider": "openai",
        "model": "gpt-4o",
    }


def rate_limits_detail(connection_id: str = "conn-1", **fields: Any) -> dict[str, Any]:
    """A RateLimitsObserved detail in wire form; keyword arguments (camelCase) override its fields."""
    detail: dict[str, Any] = {
        **_about(connection_id),
        "capacity": [{"period": "minute", "requests": 500, "tokens": 30000}],
        "source": "response-headers",
    }
    return detail | fields


def completion_detail(connection_id: str = "conn-1", **fields: Any) -> dict[str, Any]:
    """A CompletionRecorded detail in wire form; keyword arguments (camelCase) override its fields."""
    detail: dict[str, Any] = {
        **_about(connection_id),
        "status": 200,
        "promptTokens": 120,
        "completionTokens": 30,
        "latencyMs": 850,
        "refusedByCapacity": False,
        "refusedLimit": None,
        "errorCode": None,
        "stream": False,
    }
    return detail | fields


def eventbridge_body(detail_type: str, detail: dict[str, Any], **envelope: Any) -> str:
    """The body SQS delivers for an EventBridge rule target. Without `account`, as the local emulator sends."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": "vmx.ai-connections",
            "detail-type": detail_type,
            "time": detail.get("occurredAt", NOW.isoformat()),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
        | envelope
    )


def observed(connection_id: str = "conn-1", **fields: Any) -> str:
    return eventbridge_body(RATE_LIMITS_OBSERVED, rate_limits_detail(connection_id, **fields))


def completed(connection_id: str = "conn-1", **fields: Any) -> str:
    return eventbridge_body(COMPLETION_RECORDED, completion_detail(connection_id, **fields))


def sqs_batch(bodies: Sequence[str]) -> dict[str, Any]:
    """An SQS event source's batch; message `i` has the id `message-<i>`."""
    return {
        "Records": [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"receipt-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1741955415000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1741955415000",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:vmx-events",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }

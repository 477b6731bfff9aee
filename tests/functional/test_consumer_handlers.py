"""The consumers' Lambda handlers as SQS invokes them: one poison message fails alone."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from functions.discovery import handler as discovery
from functions.usage import handler as usage
from infra.system import DISCOVERY, USAGE
from local_stack.lambda_runtime import new_context
from tests.functional.conftest import Tenant


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"r{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def envelope(detail_type: str, detail: dict[str, Any]) -> str:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "source": "vmx.ai-connections",
            "detail-type": detail_type,
            "time": "2026-11-22T10:00:00Z",
            "detail": detail,
        }
    )


def scope(tenant: Tenant) -> dict[str, str]:
    return {
        "version": "1",
        "occurredAt": datetime.now(UTC).isoformat(),
        "workspaceId": tenant.workspace_id,
        "environmentId": tenant.environment_id,
        "connectionId": str(uuid.uuid4()),
    }


def test_the_discovery_handler_reports_only_the_poison_message(tenant: Tenant) -> None:
    good = envelope(
        "RateLimitsObserved",
        {
            **scope(tenant),
            "eventId": str(uuid.uuid4()),
            "connectionName": "c",
            "provider": "openai",
            "model": "gpt-4o",
            "capacity": [{"period": "minute", "requests": 10, "tokens": 100}],
            "source": "response-headers",
        },
    )

    response = discovery.lambda_handler(sqs_event(good, "not json", good), new_context(DISCOVERY))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_the_usage_handler_reports_only_the_poison_message(tenant: Tenant) -> None:
    good = envelope(
        "CompletionRecorded",
        {
            **scope(tenant),
            "eventId": str(uuid.uuid4()),
            "connectionName": "c",
            "provider": "openai",
            "model": "gpt-4o",
            "status": 200,
            "promptTokens": 3,
            "completionTokens": 4,
            "latencyMs": 120,
            "refusedByCapacity": False,
            "refusedLimit": None,
            "errorCode": None,
            "stream": False,
        },
    )
    wrong_type = envelope("ConnectionCreated", scope(tenant))

    response = usage.lambda_handler(sqs_event(wrong_type, good), new_context(USAGE))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}

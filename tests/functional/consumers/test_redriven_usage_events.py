"""A CompletionRecorded event redriven long after it was counted counts nothing: its marker lives for the dedupe
horizon from when it was written, however old the event was then; and an event older than the horizon is
not counted at all (its marker may be gone), but logged and counted as such."""

import io
import json
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3
import pytest

from functions.usage import handler as usage_handler
from infra.system import USAGE
from local_stack.lambda_runtime import new_context
from tests.functional.consumers.conftest import SetClock
from tests.unit.consumers.events import NOW, completed, sqs_batch
from tests.unit.consumers.usage_contract import DAY
from vmx.consumers.ports import Recorded
from vmx.consumers.usage import DEDUPE_HORIZON, Uncounted, handle_completion_recorded
from vmx.storage.usage_store import DynamoUsageStatistics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def expire_items(client: "DynamoDBClient", now: datetime) -> None:
    """What DynamoDB's TTL does in time (moto's does not): deletes the usage table's items expired by `now`."""
    table = os.environ["USAGE_TABLE_NAME"]
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if "expiresAt" in item and int(item["expiresAt"]["N"]) < now.timestamp():
                client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def day_requests(usage: DynamoUsageStatistics, connection_id: str) -> int:
    buckets = usage.series(connection_id, DAY, NOW - timedelta(days=1), NOW + timedelta(days=1))
    return sum(bucket.requests for bucket in buckets)


def test_an_event_redriven_from_the_dead_letter_queue_days_later_counts_once(
    usage: DynamoUsageStatistics, clock: SetClock, dynamodb: "DynamoDBClient"
) -> None:
    # Given an event first delivered a day after it happened (EventBridge retried it), and counted then
    connection_id = f"conn-{uuid.uuid4().hex}"
    body = completed(connection_id)
    clock.now = NOW + timedelta(days=1)
    first = handle_completion_recorded(body, usage, clock.now)

    # When it is redriven from the dead-letter queue almost 14 days later, after TTL deleted what had expired
    clock.now += timedelta(days=13, hours=23)
    expire_items(dynamodb, clock.now)
    redriven = handle_completion_recorded(body, usage, clock.now)

    # Then it counted once
    assert (first.outcome, redriven.outcome) == (Recorded.WRITTEN, Recorded.ALREADY)
    assert day_requests(usage, connection_id) == 1


def test_an_event_older_than_the_dedupe_horizon_is_not_counted(
    usage: DynamoUsageStatistics, clock: SetClock, dynamodb: "DynamoDBClient"
) -> None:
    connection_id = f"conn-{uuid.uuid4().hex}"
    body = completed(connection_id)
    clock.now = NOW + DEDUPE_HORIZON + timedelta(seconds=1)

    late = handle_completion_recorded(body, usage, clock.now)

    assert late.outcome is Uncounted.TOO_OLD
    assert day_requests(usage, connection_id) == 0


def test_the_usage_handler_logs_and_counts_an_event_too_old_to_count(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    connection_id = f"conn-{uuid.uuid4().hex}"
    occurred = datetime.now(UTC) - DEDUPE_HORIZON - timedelta(hours=1)
    body = completed(connection_id, occurredAt=occurred.isoformat(), connectionName="secret-looking-name")

    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(usage_handler.function.observed.logger.registered_formatter)
    handler_logger = logging.getLogger(usage_handler.function.observed.logger.name)
    handler_logger.addHandler(handler)
    try:
        response = usage_handler.lambda_handler(sqs_batch([body]), new_context(USAGE))
    finally:
        handler_logger.removeHandler(handler)

    assert response == {"batchItemFailures": []}
    day = boto3.client("dynamodb").query(
        TableName=os.environ["USAGE_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USAGE#{connection_id}"}},
    )["Items"]
    assert day == []
    (warning,) = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert (warning["level"], warning["messageId"], warning["outcome"]) == ("WARNING", "message-0", "too-old")
    assert "secret-looking-name" not in logged.getvalue()
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["UsageEventsTooOld"] for line in emitted if "UsageEventsTooOld" in line] == [[1.0]]

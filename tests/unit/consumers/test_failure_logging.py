"""The consumers' batch processor tells the logs which record failed and why, at WARNING (SQS delivers it
again) or ERROR (a poison message), with its messageId and the exception's type, never the payload or an
exception's text; and counts each failure."""

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tests.unit.consumers.events import NOW, completed, sqs_batch
from tests.unit.consumers.fakes import InMemoryUsageStatistics
from vmx.consumers.usage import handle_completion_recorded
from vmx.entry.queue import LoggedBatchProcessor
from vmx.storage.errors import StorageUnavailable

SECRET = "sk-proj-very-secret-0123456789"


@pytest.fixture
def logged() -> Iterator[tuple[Logger, io.StringIO]]:
    """A Powertools logger of the test's own (loggers of one service share their handler), and the JSON lines it
    writes."""
    logger = Logger(
        service=f"consumer-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(lines := io.StringIO())
    )
    yield logger, lines


def entries(lines: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines.getvalue().splitlines()]


def failing_store(exception: Exception) -> Any:
    class Failing(InMemoryUsageStatistics):
        def record(self, completion: Any) -> Any:
            if completion.connection_id == "conn-failing":
                raise exception
            return super().record(completion)

    return Failing()


def run(logger: Logger, metrics: Metrics, bodies: list[str], exception: Exception) -> Any:
    store = failing_store(exception)

    def handle(record: SQSRecord) -> None:
        handle_completion_recorded(record.body, store, NOW)

    return process_partial_response(
        event=sqs_batch(bodies), record_handler=handle, processor=LoggedBatchProcessor(logger, metrics)
    )


def test_each_failed_record_is_logged_with_its_message_id_and_error_type_and_no_payload(
    logged: tuple[Logger, io.StringIO],
) -> None:
    logger, lines = logged
    metrics = Metrics(namespace="Test")
    bodies = [
        completed("conn-1"),
        # poison: a field of the wrong type, whose value is a secret
        completed("conn-1", status=SECRET),
        completed("conn-failing", connectionName=SECRET),
    ]

    result = run(logger, metrics, bodies, StorageUnavailable(f"DynamoDB request failed ({SECRET})"))

    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}, {"itemIdentifier": "message-2"}]}
    poison, retried = entries(lines)
    assert (poison["level"], poison["messageId"], poison["errorType"]) == ("ERROR", "message-1", "PoisonMessage")
    assert "status" in poison["reason"]
    assert (retried["level"], retried["messageId"], retried["errorType"]) == (
        "WARNING",
        "message-2",
        "StorageUnavailable",
    )
    assert retried["receiveCount"] == 1
    assert SECRET not in lines.getvalue()
    emitted: dict[str, Any] = dict(metrics.serialize_metric_set())
    assert emitted["ConsumerRecordsFailed"] == [1.0, 1.0]


def test_a_batch_that_fails_whole_is_reported_record_by_record_without_raising(
    logged: tuple[Logger, io.StringIO],
) -> None:
    logger, lines = logged

    result = run(logger, Metrics(namespace="Test"), [completed("conn-failing")] * 2, KeyError(SECRET))

    assert result == {"batchItemFailures": [{"itemIdentifier": "message-0"}, {"itemIdentifier": "message-1"}]}
    assert [entry["errorType"] for entry in entries(lines)] == ["KeyError", "KeyError"]
    assert SECRET not in lines.getvalue()

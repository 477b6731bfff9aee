"""Removes what deleted connections leave behind (ConnectionDeleted events, from an SQS queue): their capacity
counters, usage statistics and discovered capacity."""

import os
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.consumers.batch import LoggedBatchProcessor
from vmx.consumers.connection_remains import handle_connection_deleted
from vmx.consumers.ports import ConnectionRemains
from vmx.settings import ConnectionRemainsSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = LoggedBatchProcessor(logger, metrics)


@cache
def remains() -> ConnectionRemains:
    return wiring.connection_remains(ConnectionRemainsSettings.from_environ(os.environ))


def handle_record(record: SQSRecord, store: ConnectionRemains) -> None:
    deleted, removed = handle_connection_deleted(record.body, store)
    logger.info(
        "deleted connection's remains removed",
        extra={
            "messageId": record.message_id,
            "connectionId": deleted.connection_id,
            "counters": removed.counters,
            "usageBuckets": removed.usage_buckets,
            "discovered": removed.discovered,
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a failed record is reported alone; the queue retries it, then moves it to the dead-letter queue
    return process_partial_response(
        event=event, record_handler=partial(handle_record, store=remains()), processor=processor, context=context
    )

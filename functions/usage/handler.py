"""Aggregates CompletionRecorded events (from an SQS queue) into hourly and daily usage statistics."""

import os
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.consumers.ports import UsageRecorder
from vmx.consumers.usage import handle_completion_recorded
from vmx.settings import UsageSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def recorder() -> UsageRecorder:
    return wiring.usage_statistics(UsageSettings.from_environ(os.environ))


def handle_record(record: SQSRecord, store: UsageRecorder) -> None:
    handle_completion_recorded(record.body, store)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a failed record is reported alone; the queue retries it, then moves it to the dead-letter queue
    return process_partial_response(
        event=event, record_handler=partial(handle_record, store=recorder()), processor=processor, context=context
    )

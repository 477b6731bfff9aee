"""Aggregates CompletionRecorded events (from an SQS queue) into hourly and daily usage statistics."""

import os
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.clock import utc_now
from vmx.consumers.batch import LoggedBatchProcessor
from vmx.consumers.ports import Recorded, UsageRecorder
from vmx.consumers.usage import Uncounted, handle_completion_recorded
from vmx.settings import UsageSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = LoggedBatchProcessor(logger, metrics)

# What an event that is not counted is counted as instead
_NOT_COUNTED_METRICS = {
    Recorded.ALREADY: "UsageEventsDuplicate",
    Recorded.CONNECTION_DELETED: "UsageEventsOfDeletedConnections",
    Uncounted.TOO_OLD: "UsageEventsTooOld",
}


@cache
def recorder() -> UsageRecorder:
    return wiring.usage_statistics(UsageSettings.from_environ(os.environ))


def handle_record(record: SQSRecord, store: UsageRecorder) -> None:
    counting = handle_completion_recorded(record.body, store, utc_now())
    if counting.outcome is Recorded.WRITTEN:
        return
    extra = {
        "messageId": record.message_id,
        "eventId": counting.completion.event_id,
        "occurredAt": counting.completion.occurred_at.isoformat(),
        "outcome": counting.outcome.value,
    }
    if counting.outcome is Uncounted.TOO_OLD:
        logger.warning("usage event older than the dedupe horizon not counted", extra=extra)
    else:
        logger.info("usage event not counted", extra=extra)
    metrics.add_metric(name=_NOT_COUNTED_METRICS[counting.outcome], unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a failed record is reported alone; the queue retries it, then moves it to the dead-letter queue
    return process_partial_response(
        event=event, record_handler=partial(handle_record, store=recorder()), processor=processor, context=context
    )

"""Aggregates CompletionRecorded events (from an SQS queue) into hourly and daily usage statistics."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vmx import wiring
from vmx.clock import utc_now
from vmx.consumers.ports import Recorded, UsageRecorder
from vmx.consumers.usage import Uncounted, handle_completion_recorded
from vmx.entry.queue import QueueConsumer
from vmx.settings import UsageSettings

function = QueueConsumer(lambda _: wiring.usage_statistics(UsageSettings.from_environ(os.environ)))

# What an event that is not counted is counted as instead
_NOT_COUNTED_METRICS = {
    Recorded.ALREADY: "UsageEventsDuplicate",
    Recorded.CONNECTION_DELETED: "UsageEventsOfDeletedConnections",
    Uncounted.TOO_OLD: "UsageEventsTooOld",
}


def handle_record(record: SQSRecord, recorder: UsageRecorder) -> None:
    counting = handle_completion_recorded(record.body, recorder, utc_now())
    if counting.outcome is Recorded.WRITTEN:
        return
    extra = {
        "messageId": record.message_id,
        "eventId": counting.completion.event_id,
        "occurredAt": counting.completion.occurred_at.isoformat(),
        "outcome": counting.outcome.value,
    }
    if counting.outcome is Uncounted.TOO_OLD:
        function.observed.logger.warning("usage event older than the dedupe horizon not counted", extra=extra)
    else:
        function.observed.logger.info("usage event not counted", extra=extra)
    function.observed.metrics.add_metric(name=_NOT_COUNTED_METRICS[counting.outcome], unit=MetricUnit.Count, value=1)


lambda_handler = function.handler(handle_record)

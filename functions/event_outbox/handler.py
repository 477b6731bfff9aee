"""Puts on the bus the events that their publishers could not (an SQS queue they keep them in, the outbox):
retried by SQS while the bus still fails, then dead-lettered with an alarm."""

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
from vmx.consumers.batch import LoggedBatchProcessor
from vmx.consumers.envelope import PoisonMessage
from vmx.events.outbox import EventOutboxConsumer, UnreadableEntry
from vmx.settings import EventOutboxSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = LoggedBatchProcessor(logger, metrics)


@cache
def consumer() -> EventOutboxConsumer:
    return wiring.event_outbox_consumer(EventOutboxSettings.from_environ(os.environ))


def handle_record(record: SQSRecord, outbox: EventOutboxConsumer) -> None:
    try:
        outbox.publish(record.body)
    except UnreadableEntry as exc:
        raise PoisonMessage(str(exc)) from None
    metrics.add_metric(name="DeferredEventsPublished", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a failed record is reported alone; the queue retries it, then moves it to the dead-letter queue
    return process_partial_response(
        event=event, record_handler=partial(handle_record, outbox=consumer()), processor=processor, context=context
    )

"""Puts on the bus the events that their publishers could not (an SQS queue they keep them in, the outbox):
retried by SQS while the bus still fails, then dead-lettered with an alarm."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vmx import wiring
from vmx.aws.event_outbox import EventOutboxConsumer, UnreadableEntry
from vmx.consumers.envelope import PoisonMessage
from vmx.entry.queue import QueueConsumer
from vmx.settings import EventOutboxSettings

function = QueueConsumer(lambda _: wiring.event_outbox_consumer(EventOutboxSettings.from_environ(os.environ)))


def handle_record(record: SQSRecord, outbox: EventOutboxConsumer) -> None:
    try:
        outbox.publish(record.body)
    except UnreadableEntry as exc:
        raise PoisonMessage(str(exc)) from None
    function.observed.metrics.add_metric(name="DeferredEventsPublished", unit=MetricUnit.Count, value=1)


lambda_handler = function.handler(handle_record)

"""Writes the capacity settlements that the completions function could not write after an answer (an SQS queue
it sends them to): a reconcile with the tokens really used, or the release of a request never sent."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vmx import wiring
from vmx.capacity.ledger import CapacityCounters
from vmx.clock import utc_now
from vmx.consumers.capacity_settlements import apply_deferred_settlement
from vmx.entry.queue import QueueConsumer
from vmx.settings import CapacitySettlementsSettings

function = QueueConsumer(lambda _: wiring.settlement_counters(CapacitySettlementsSettings.from_environ(os.environ)))


def handle_record(record: SQSRecord, counters: CapacityCounters) -> None:
    settlement = apply_deferred_settlement(record.body, counters, utc_now())
    function.observed.logger.info(
        "deferred capacity settlement written",
        extra={
            "messageId": record.message_id,
            "connectionId": settlement.reservation.scope.connection_id,
            "requestId": settlement.reservation.request_id,
            "release": settlement.actual_tokens is None,
        },
    )
    function.observed.metrics.add_metric(name="DeferredSettlementsWritten", unit=MetricUnit.Count, value=1)


lambda_handler = function.handler(handle_record)

"""Writes the capacity settlements that the completions function could not write after an answer (an SQS queue
it sends them to): a reconcile with the tokens really used, or the release of a request never sent."""

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
from vmx.capacity.ledger import CapacityCounters
from vmx.clock import utc_now
from vmx.consumers.batch import LoggedBatchProcessor
from vmx.consumers.capacity_settlements import apply_deferred_settlement
from vmx.settings import CapacitySettlementsSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = LoggedBatchProcessor(logger, metrics)


@cache
def counters() -> CapacityCounters:
    return wiring.settlement_counters(CapacitySettlementsSettings.from_environ(os.environ))


def handle_record(record: SQSRecord, store: CapacityCounters) -> None:
    settlement = apply_deferred_settlement(record.body, store, utc_now())
    logger.info(
        "deferred capacity settlement written",
        extra={
            "messageId": record.message_id,
            "connectionId": settlement.reservation.scope.connection_id,
            "requestId": settlement.reservation.request_id,
            "release": settlement.actual_tokens is None,
        },
    )
    metrics.add_metric(name="DeferredSettlementsWritten", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a failed record is reported alone; the queue retries it, then moves it to the dead-letter queue
    return process_partial_response(
        event=event, record_handler=partial(handle_record, store=counters()), processor=processor, context=context
    )

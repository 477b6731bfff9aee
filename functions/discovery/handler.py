"""Persists RateLimitsObserved events (from an SQS queue) into connections' discovered capacity."""

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
from vmx.consumers.discovered import handle_rate_limits_observed
from vmx.consumers.ports import DiscoveredCapacityWriter, Recorded
from vmx.settings import DiscoverySettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = LoggedBatchProcessor(logger, metrics)


@cache
def writer() -> DiscoveredCapacityWriter:
    return wiring.discovered_capacity_writer(DiscoverySettings.from_environ(os.environ))


def handle_record(record: SQSRecord, store: DiscoveredCapacityWriter) -> None:
    if handle_rate_limits_observed(record.body, store) is Recorded.CONNECTION_DELETED:
        logger.info("observation of a deleted connection not recorded", extra={"messageId": record.message_id})
        metrics.add_metric(name="ObservationsOfDeletedConnections", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a failed record is reported alone; the queue retries it, then moves it to the dead-letter queue
    return process_partial_response(
        event=event, record_handler=partial(handle_record, store=writer()), processor=processor, context=context
    )

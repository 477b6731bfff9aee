"""Persists RateLimitsObserved events (from an SQS queue) into connections' discovered capacity."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from vmx import wiring
from vmx.consumers.discovered import handle_rate_limits_observed
from vmx.consumers.ports import DiscoveredCapacityWriter, Recorded
from vmx.entry.queue import QueueConsumer
from vmx.settings import DiscoverySettings

function = QueueConsumer(lambda _: wiring.discovered_capacity_writer(DiscoverySettings.from_environ(os.environ)))


def handle_record(record: SQSRecord, writer: DiscoveredCapacityWriter) -> None:
    if handle_rate_limits_observed(record.body, writer) is Recorded.CONNECTION_DELETED:
        function.observed.logger.info(
            "observation of a deleted connection not recorded", extra={"messageId": record.message_id}
        )
        function.observed.metrics.add_metric(name="ObservationsOfDeletedConnections", unit=MetricUnit.Count, value=1)


lambda_handler = function.handler(handle_record)

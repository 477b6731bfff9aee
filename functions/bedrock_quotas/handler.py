"""Reads Bedrock connections' quotas from Service Quotas, on an EventBridge schedule, as RateLimitsObserved events."""

import os
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx import wiring
from vmx.entry import Dependencies, Observed
from vmx.settings import BedrockQuotasSettings
from vmx.use_cases.bedrock_quotas import BedrockQuotaPorts, refresh_bedrock_quotas

observed = Observed()
logger, metrics = observed.logger, observed.metrics

# The run stops with this much time left, so that it still logs and reports its counts.
RESERVED_MILLISECONDS = 20_000
METRICS = {
    "connections_seen": "BedrockConnectionsSeen",
    "connections_skipped": "BedrockConnectionsSkipped",
    "models_published": "BedrockModelQuotasPublished",
    "models_skipped": "BedrockModelsSkipped",
}


def _ports() -> BedrockQuotaPorts:
    settings = BedrockQuotasSettings.from_environ(os.environ)
    return wiring.bedrock_quotas(settings, wiring.event_publisher(settings, logger, metrics))


ports = Dependencies(_ports)


@event_source(data_class=EventBridgeEvent)
def run(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.info("bedrock quotas run started", extra={"scheduled_at": event.time})
    report = refresh_bedrock_quotas(
        ports.get(), logger, out_of_time=lambda: context.get_remaining_time_in_millis() < RESERVED_MILLISECONDS
    )
    counts = asdict(report)
    logger.info("bedrock quotas run ended", extra=counts)
    for field, name in METRICS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[field])
    if not report.finished:
        metrics.add_metric(name="BedrockQuotaRunsCutShort", unit=MetricUnit.Count, value=1)
    return counts


lambda_handler = observed.entry(run)

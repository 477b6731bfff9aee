"""The consumer of RateLimitsObserved events: what providers report becomes a connection's discovered capacity."""

from vmx.consumers.envelope import event_detail
from vmx.consumers.inputs import RateLimitsObservation
from vmx.consumers.ports import DiscoveredCapacityWriter, Recorded

RATE_LIMITS_OBSERVED = "RateLimitsObserved"


def handle_rate_limits_observed(record_body: str, writer: DiscoveredCapacityWriter) -> Recorded:
    """Records the observation in one SQS message body (an EventBridge event). A duplicate, an observation
    older than the one stored, or one of a deleted connection changes nothing. Raises PoisonMessage for a body
    no retry can process."""
    observation = event_detail(record_body, RATE_LIMITS_OBSERVED, RateLimitsObservation)
    return writer.record(
        observation.workspace_id,
        observation.environment_id,
        observation.connection_id,
        observation.model,
        observation.capacity,
        observation.occurred_at,
        observation.source,
    )

"""The consumers inside Powertools' batch utility, as the Lambda handlers run them: a record that fails,
poison or not, is reported in batchItemFailures (SQS delivers it again and, after maxReceiveCount, moves it
to the dead-letter queue) while the rest of the batch succeeds."""

from collections.abc import Callable, Sequence
from datetime import datetime

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tests.unit.consumers.events import NOW, completed, observed, sqs_batch
from tests.unit.consumers.fakes import InMemoryDiscoveredCapacity, InMemoryUsageStatistics
from vmx.consumers.discovered import handle_rate_limits_observed
from vmx.consumers.inputs import ObservedLimit
from vmx.consumers.ports import Recorded
from vmx.consumers.usage import handle_completion_recorded
from vmx.consumers.usage_stats import Granularity
from vmx.storage.errors import StorageUnavailable


def run_batch(bodies: Sequence[str], handle: Callable[[str], object]) -> PartialItemFailureResponse:
    """What a consumer's Lambda handler does with its SQS event."""

    def record_handler(record: SQSRecord) -> None:
        handle(record.body)

    return process_partial_response(
        event=sqs_batch(bodies), record_handler=record_handler, processor=BatchProcessor(event_type=EventType.SQS)
    )


def test_only_the_poison_message_of_a_batch_fails() -> None:
    writer = InMemoryDiscoveredCapacity()
    bodies = [observed(model="gpt-4o"), '{"detail-type": "RateLimitsObserved"', observed(model="gpt-4o-mini")]

    result = run_batch(bodies, lambda body: handle_rate_limits_observed(body, writer))

    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    discovered = writer.discovered_capacity("ws-1", "env-1", "conn-1")
    assert discovered is not None
    assert set(discovered["models"]) == {"gpt-4o", "gpt-4o-mini"}


class UnavailableOnce(InMemoryDiscoveredCapacity):
    """Fails its first write as DynamoDB would when throttled."""

    def __init__(self) -> None:
        super().__init__()
        self._failed = False

    def record(
        self,
        workspace_id: str,
        environment_id: str,
        connection_id: str,
        model: str,
        capacity: Sequence[ObservedLimit],
        observed_at: datetime,
        source: str,
    ) -> Recorded:
        if not self._failed:
            self._failed = True
            raise StorageUnavailable("DynamoDB request failed (ProvisionedThroughputExceededException)")
        return super().record(workspace_id, environment_id, connection_id, model, capacity, observed_at, source)


def test_a_storage_failure_fails_its_record_for_a_later_retry_which_succeeds() -> None:
    writer = UnavailableOnce()
    bodies = [observed(model="gpt-4o"), observed(model="gpt-4o-mini")]

    first = run_batch(bodies, lambda body: handle_rate_limits_observed(body, writer))
    redelivered = run_batch(bodies[:1], lambda body: handle_rate_limits_observed(body, writer))

    assert first == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert redelivered == {"batchItemFailures": []}
    discovered = writer.discovered_capacity("ws-1", "env-1", "conn-1")
    assert discovered is not None
    assert set(discovered["models"]) == {"gpt-4o", "gpt-4o-mini"}


def test_duplicates_in_and_across_batches_are_counted_once() -> None:
    usage = InMemoryUsageStatistics()
    once, other = completed("conn-1"), completed("conn-1")

    first = run_batch([once, other, once], lambda body: handle_completion_recorded(body, usage, NOW))
    second = run_batch([once], lambda body: handle_completion_recorded(body, usage, NOW))

    assert first == second == {"batchItemFailures": []}
    (bucket,) = usage.series("conn-1", Granularity.HOUR, NOW, NOW.replace(hour=13))
    assert bucket.requests == 2


def test_an_older_observation_delivered_after_a_newer_one_is_dropped() -> None:
    writer = InMemoryDiscoveredCapacity()
    newer = observed(
        occurredAt="2025-03-14T12:31:00+00:00", capacity=[{"period": "minute", "requests": 900, "tokens": 1}]
    )
    older = observed(
        occurredAt="2025-03-14T12:30:00+00:00", capacity=[{"period": "minute", "requests": 100, "tokens": 1}]
    )

    result = run_batch([newer, older], lambda body: handle_rate_limits_observed(body, writer))

    assert result == {"batchItemFailures": []}
    discovered = writer.discovered_capacity("ws-1", "env-1", "conn-1")
    assert discovered is not None
    assert discovered["models"]["gpt-4o"]["capacity"] == [{"period": "minute", "requests": 900, "tokens": 1}]

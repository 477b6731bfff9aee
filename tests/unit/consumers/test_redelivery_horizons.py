"""The horizons that keep consumers exact, held against the infrastructure they depend on: how long a copy of
an event can still be delivered, and how long a completion may still reserve capacity on a deleted connection."""

from datetime import timedelta

from infra.events import DEAD_LETTER_RETENTION, QUEUE_RETENTION
from infra.system import CONNECTION_REMAINS, CONNECTION_REMAINS_DELAY_SECONDS, EVENT_QUEUES
from local_stack.event_delivery import DEAD_LETTER_RETENTION_SECONDS
from tests.unit.consumers.events import NOW, completed
from tests.unit.consumers.fakes import InMemoryUsageStatistics
from vmx.consumers.ports import Recorded
from vmx.consumers.usage import DEDUPE_HORIZON, Uncounted, handle_completion_recorded
from vmx.settings import CompletionsSettings
from vmx.storage.usage_store import MARKER_LIFETIME, TOMBSTONE_LIFETIME

# EventBridge retries a delivery to its target for at most this long
EVENTBRIDGE_RETRIES = timedelta(hours=24)


def test_the_dedupe_horizon_outlasts_every_redelivery_with_a_margin() -> None:
    queue = timedelta(days=QUEUE_RETENTION.to_days())
    dead_letters = timedelta(days=DEAD_LETTER_RETENTION.to_days())

    assert dead_letters == timedelta(seconds=DEAD_LETTER_RETENTION_SECONDS)
    # an event may wait out EventBridge's retries, then the queue, then be redriven from the dead-letter queue
    assert EVENTBRIDGE_RETRIES + queue + dead_letters + timedelta(days=1) <= DEDUPE_HORIZON


def test_markers_and_tombstones_outlive_the_horizon_from_when_they_are_written() -> None:
    # an event younger than the horizon finds its marker, and a deleted connection's tombstone, still there
    assert MARKER_LIFETIME > DEDUPE_HORIZON
    # a completion may finish (and be recorded) up to its 15-minute invocation after the delete
    assert DEDUPE_HORIZON + timedelta(minutes=15) <= TOMBSTONE_LIFETIME


def test_the_usage_consumer_counts_up_to_the_horizon_and_not_beyond() -> None:
    usage = InMemoryUsageStatistics()

    within = handle_completion_recorded(completed("conn-1"), usage, NOW + DEDUPE_HORIZON)
    beyond = handle_completion_recorded(completed("conn-1"), usage, NOW + DEDUPE_HORIZON + timedelta(seconds=1))

    assert (within.outcome, beyond.outcome) == (Recorded.WRITTEN, Uncounted.TOO_OLD)


def test_remains_are_removed_once_no_completion_can_reserve_on_the_deleted_connection() -> None:
    longest_cache = CompletionsSettings.model_fields["connection_cache_seconds"].metadata
    (cache_bound,) = [bound.le for bound in longest_cache if hasattr(bound, "le")]
    (queue,) = [queue for queue in EVENT_QUEUES if queue.consumer == CONNECTION_REMAINS.name]

    assert queue.detail_types == ("ConnectionDeleted",)
    assert queue.delivery_delay_seconds == CONNECTION_REMAINS_DELAY_SECONDS
    # a minute of margin for what a completion does between reading the connection and reserving
    assert cache_bound + 60 <= CONNECTION_REMAINS_DELAY_SECONDS
    # SQS delays a message 15 minutes at most
    assert CONNECTION_REMAINS_DELAY_SECONDS <= 900

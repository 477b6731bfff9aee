"""The consumer of CompletionRecorded events: each completion is counted once in its connection's usage."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from vmx.consumers.envelope import event_detail
from vmx.consumers.inputs import RecordedCompletion
from vmx.consumers.ports import Recorded, UsageRecorder

COMPLETION_RECORDED = "CompletionRecorded"

# How long after it happened an event may still be delivered: EventBridge retries a delivery for 24 hours, the
# queue keeps a message 4 days and its dead-letter queue 14 from when it was first queued (infra/events.py),
# and a redrive from there may queue it again. The usage store keeps an event's marker at least this long from
# when it counts the event, so an event younger than this is never counted twice; an older one is not counted
# at all, since its marker may be gone.
DEDUPE_HORIZON = timedelta(days=21)


class Uncounted(StrEnum):
    # refused before any write: its marker may have expired, so counting it could count it twice
    TOO_OLD = "too-old"


@dataclass(frozen=True)
class Counting:
    completion: RecordedCompletion
    outcome: Recorded | Uncounted


def handle_completion_recorded(record_body: str, recorder: UsageRecorder, now: datetime) -> Counting:
    """Counts the completion in one SQS message body (an EventBridge event), unless it was counted before, its
    connection was deleted, or it is older than DEDUPE_HORIZON. Raises PoisonMessage for a body no retry can
    process."""
    completion = event_detail(record_body, COMPLETION_RECORDED, RecordedCompletion)
    if now - completion.occurred_at > DEDUPE_HORIZON:
        return Counting(completion, Uncounted.TOO_OLD)
    return Counting(completion, recorder.record(completion))

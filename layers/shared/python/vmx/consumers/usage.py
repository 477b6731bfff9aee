"""The consumer of CompletionRecorded events: each completion is counted once in its connection's usage."""

from vmx.consumers.envelope import event_detail
from vmx.consumers.inputs import RecordedCompletion
from vmx.consumers.ports import UsageRecorder

COMPLETION_RECORDED = "CompletionRecorded"


def handle_completion_recorded(record_body: str, recorder: UsageRecorder) -> None:
    """Counts the completion in one SQS message body (an EventBridge event); a redelivered event is not
    counted again. Raises PoisonMessage for a body no retry can process."""
    recorder.record(event_detail(record_body, COMPLETION_RECORDED, RecordedCompletion))

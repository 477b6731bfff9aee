"""The entry of a function fed by an SQS queue that reports partial batch failures."""

from collections.abc import Callable
from typing import Any, Generic

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    ExceptionInfo,
    FailureResponse,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx.consumers.envelope import PoisonMessage
from vmx.entry import D, Dependencies, Handler, Observed


class QueueConsumer(Generic[D]):
    """A function fed by an SQS queue that reports partial batch failures: each record is handled alone with
    the dependencies, and a failed one is logged (LoggedBatchProcessor) and delivered again by SQS."""

    def __init__(self, build: Callable[[Observed], D]) -> None:
        self.observed = Observed()
        self.dependencies = Dependencies(lambda: build(self.observed))
        self._processor = LoggedBatchProcessor(self.observed.logger, self.observed.metrics)

    def rebuild(self) -> None:
        """The dependencies are built again when next needed (a test changed the environment or the clients)."""
        self.dependencies.use(None)

    def handler(self, handle_record: Callable[[SQSRecord, D], None]) -> Handler:
        def consume(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
            dependencies = self.dependencies.get()
            return process_partial_response(
                event=event,
                record_handler=lambda record: handle_record(record, dependencies),
                processor=self._processor,
                context=context,
            )

        return self.observed.entry(consume)


class LoggedBatchProcessor(BatchProcessor):
    """Powertools' batch processor for our SQS consumers, which says in our logs which record failed and why.

    Powertools alone logs a failed record at debug level only (or, given a logger, with a traceback that may
    quote the record). This logs each failure at WARNING (SQS delivers it again) or ERROR (a poison message,
    on its way to the dead-letter queue) with its messageId, receive count and exception type, never the
    payload or an exception's text (which may quote it), and counts it in `ConsumerRecordsFailed`.
    """

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        # A batch that fails whole is reported record by record, as a partial one is: raising instead would
        # make Lambda log a BatchProcessingError that quotes every exception's text.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._logger = logger
        self._metrics = metrics

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        error = exception[1]
        extra: dict[str, object] = {
            # None when the record was not even an SQS record
            "messageId": getattr(record, "message_id", None),
            "receiveCount": _receive_count(record),
            "errorType": type(error).__name__,
        }
        if isinstance(error, PoisonMessage):
            # its text is written to name fields and reasons, never values (vmx.consumers.envelope)
            extra["reason"] = str(error)
            self._logger.error("record refused: no retry can process it", extra=extra)
        else:
            self._logger.warning("record failed: SQS will deliver it again", extra=extra)
        self._metrics.add_metric(name="ConsumerRecordsFailed", unit=MetricUnit.Count, value=1)
        return super().failure_handler(record, exception)


def _receive_count(record: Any) -> int | None:
    try:
        return int(record.attributes.approximate_receive_count)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None

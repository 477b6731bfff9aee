"""What every function's handler module shares: Powertools' logger, tracer and metrics, the decorators each
function applies to its entry the same way, and its dependencies, built once per instance when first needed
(never at import, so settings are read in the invocation that needs them) or given by a test."""

import os
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
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
from vmx.http.app import new_app, resolve
from vmx.http.error_shapes import ErrorRenderer, rest_error_body
from vmx.settings import ConsoleOriginSettings

D = TypeVar("D")
S = TypeVar("S", bound=ConsoleOriginSettings)
# the context is Lambda's, or the local stack's look-alike
Handler = Callable[[Any, Any], Any]


class Observed:
    """One function's logger, metrics and (made only for a traced entry: the X-Ray SDK is slow to import) tracer."""

    def __init__(self) -> None:
        self.logger = Logger()
        self.metrics = Metrics()

    @cached_property
    def tracer(self) -> Tracer:
        return Tracer()

    def entry(self, handler: Handler, *, traced: bool = True) -> Handler:
        """`handler` with the request's context in every log line, its metrics flushed when it returns, and its
        trace; never with its response as trace metadata (responses hold new API keys and answers). `traced`
        False leaves out the tracer's subsegment, which would log as an error every exception it raises."""
        if traced:
            handler = self.tracer.capture_lambda_handler(capture_response=False)(handler)
        return self.logger.inject_lambda_context(self.metrics.log_metrics(handler))


class Dependencies(Generic[D]):
    """What a function's handlers call, built by `build` when first needed and kept for the instance's life."""

    def __init__(self, build: Callable[[], D]) -> None:
        self._build = build
        self._built: D | None = None

    def get(self) -> D:
        if self._built is None:
            self._built = self._build()
        return self._built

    def use(self, given: D | None) -> None:
        """From now on `given` (a test's fakes); None builds them again when next needed."""
        self._built = given


class QueueConsumer(Generic[D]):
    """A function fed by an SQS queue that reports partial batch failures: each record is handled alone with
    the dependencies, and a failed one is logged (LoggedBatchProcessor) and delivered again by SQS."""

    def __init__(self, build: Callable[[Observed], D]) -> None:
        self.observed = Observed()
        self.dependencies = Dependencies(lambda: build(self.observed))
        self._processor = LoggedBatchProcessor(self.observed.logger, self.observed.metrics)

    @property
    def logger(self) -> Logger:
        return self.observed.logger

    @property
    def metrics(self) -> Metrics:
        return self.observed.metrics

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


class ApiFunction(Generic[S, D]):
    """A function behind API routes: its resolver (errors in `render_errors`' shape), its settings, read from the
    environment once, and its dependencies, built from them."""

    def __init__(
        self,
        settings: Callable[[Mapping[str, str]], S],
        build: Callable[[S, Observed], D],
        render_errors: ErrorRenderer = rest_error_body,
    ) -> None:
        self.observed = Observed()
        self.app = new_app(self.observed.logger, render_errors)
        self.settings = Dependencies(lambda: settings(os.environ))
        self.dependencies = Dependencies(lambda: build(self.settings.get(), self.observed))

    @property
    def logger(self) -> Logger:
        return self.observed.logger

    @property
    def metrics(self) -> Metrics:
        return self.observed.metrics

    def rebuild(self) -> None:
        """Settings and dependencies are read and built again when next needed (a test changed the environment)."""
        self.settings.use(None)
        self.dependencies.use(None)

    def handler(self) -> Handler:
        def serve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            return resolve(self.app, event, context, allowed_origin=self.settings.get().console_origin)

        return self.observed.entry(serve)


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

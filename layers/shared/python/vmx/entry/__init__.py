"""What every function's handler module shares: Powertools' logger, metrics and tracer with the decorators each
function applies to its entry the same way, and its dependencies, built once per instance when first needed
(never at import, so settings are read in the invocation that needs them) or given by a test. API functions
add vmx.entry.api, SQS consumers vmx.entry.queue: each function imports only what its kind needs."""

from collections.abc import Callable
from functools import cached_property
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

D = TypeVar("D")
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

"""Loads the handlers of `functions/` and invokes them the way the Lambda runtime would."""

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.handlers import FUNCTIONS_ROOT, import_handler_module
from infra.system import Function
from vmx.http.streaming import StreamingResponse

LambdaHandler = Callable[[dict[str, Any], Any], Any]
# `LambdaRuntime.invoke(function_name, event)`: what the handler returned (a streamed response as a
# StreamedInvocation), or what it raised.
Invoke = Callable[[str, dict[str, Any]], Any]


@dataclass
class StreamedInvocation:
    """A response-streaming function's answer as the Lambda Runtime API carries it: the prelude and the body's
    bytes as the handler produces them. `finish()` is called once they have all been sent, or the client left:
    it stops the body and runs the function's work after the response, as vmx.runtime does in AWS."""

    pieces: Iterator[bytes]
    finish: Callable[[], None]

    @classmethod
    def of(cls, response: StreamingResponse) -> "StreamedInvocation":
        def finish() -> None:
            response.close()
            response.after()

        return cls(response.encoded(), finish)


REGION = "us-east-1"
ACCOUNT_ID = "000000000000"


def function_name(function: Function) -> str:
    return f"vmx-local-{function.name}"


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of the runtime's context object that Powertools and our handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float = field(repr=False)
    function_version: str = "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def new_context(function: Function) -> LambdaContext:
    name = function_name(function)
    return LambdaContext(
        function_name=name,
        memory_limit_in_mb=function.memory_mb,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + function.timeout_seconds,
    )


def load_handler(function: Function, functions_root: Path = FUNCTIONS_ROOT) -> LambdaHandler:
    """Imports the function's handler afresh, under a module name of its own (infra.handlers)."""
    module = import_handler_module(function, f"local_stack_function_{function.name}", functions_root)
    handler: LambdaHandler = module.lambda_handler
    return handler


class LambdaRuntime:
    """Invokes handlers by function name, one invocation at a time.

    In AWS each execution environment runs one invocation at a time. Here every function shares one
    process, and module-level state (Powertools' Metrics store is class-level, Logger keys are
    per-logger) would leak between concurrent invocations, so invocations are serialised while HTTP
    I/O stays concurrent.
    """

    def __init__(self, functions: Iterable[Function], handlers: Mapping[str, LambdaHandler]) -> None:
        self._functions = {function.name: function for function in functions}
        missing = self._functions.keys() - handlers.keys()
        if missing:
            raise ValueError(f"no handler for functions {sorted(missing)}")
        self._handlers = dict(handlers)
        self._lock = threading.Lock()

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        context = new_context(self._functions[name])
        with self._lock:
            result = self._handlers[name](event, context)
        return StreamedInvocation.of(result) if isinstance(result, StreamingResponse) else result

"""The Lambda Runtime API loop, with its streaming response mode.

Lambda's managed Python runtime posts whatever a handler returns as one buffered response. This loop asks the
Runtime API for each invocation, calls the handler with the event and a context, and then:

- a `StreamingResponse` is posted in the streaming response mode (`Lambda-Runtime-Function-Response-Mode:
  streaming`, chunked): its prelude at once, each piece of its body the moment the handler's generator yields
  it. A failure after the first piece is reported in the chunked body's trailers, as the Runtime API
  specifies. Once the response is complete (or could not be sent further) the response's `after` work runs,
  and only then is the next invocation asked for: the client never waits on it.
- anything else is posted as JSON, as the managed runtime does; an exception as an invocation error.

It is stdlib only (http.client), so that the same code runs in AWS, under the local stack's Runtime API and
in tests against a loopback one.
"""

import base64
import http.client
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vmx.failures import described
from vmx.http.streaming import STREAMING_CONTENT_TYPE, StreamingResponse

API_VERSION = "2018-06-01"
# The Runtime API's header naming an invocation's X-Ray trace, which the SDK and Powertools read from here.
TRACE_ENV_VAR = "_X_AMZN_TRACE_ID"
AUTHORIZER_DENIAL = "Unauthorized"

logger = logging.getLogger("vmx.runtime")

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Invocation:
    request_id: str
    # Unix time in milliseconds by which the invocation must end.
    deadline_ms: int
    function_arn: str
    trace_id: str | None
    event: bytes


@dataclass(frozen=True)
class LambdaContext:
    """What the managed runtime's context offers, as Powertools and our handlers read it."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int = field(repr=False)
    function_name: str = ""
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 0
    log_group_name: str = ""
    log_stream_name: str = ""
    client_context: Any = None
    identity: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(self.deadline_ms - int(time.time() * 1000), 0)


class RuntimeApiError(Exception):
    """The Runtime API refused a call or could not be reached: the loop cannot go on."""


class RuntimeApi:
    """The Runtime API's calls, over one kept-alive connection to `address` (host:port)."""

    def __init__(self, address: str):
        host, _, port = address.rpartition(":")
        # No timeout: asking for the next invocation waits until there is one.
        self._connection = http.client.HTTPConnection(host, int(port), timeout=None)
        self._base = f"/{API_VERSION}/runtime"

    def next_invocation(self) -> Invocation:
        response = self._call("GET", f"{self._base}/invocation/next")
        headers = response.headers
        body = response.read()
        return Invocation(
            request_id=headers["Lambda-Runtime-Aws-Request-Id"],
            deadline_ms=int(headers["Lambda-Runtime-Deadline-Ms"]),
            function_arn=headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
            trace_id=headers.get("Lambda-Runtime-Trace-Id"),
            event=body,
        )

    def respond(self, request_id: str, payload: bytes) -> None:
        self._finish(self._call("POST", f"{self._base}/invocation/{request_id}/response", payload))

    def fail(self, request_id: str, error: dict[str, Any]) -> None:
        self._finish(self._call("POST", f"{self._base}/invocation/{request_id}/error", *_error_request(error)))

    def fail_init(self, error: dict[str, Any]) -> None:
        self._finish(self._call("POST", f"{self._base}/init/error", *_error_request(error)))

    def stream(self, request_id: str, pieces: Iterator[bytes]) -> bool:
        """Posts the pieces in the streaming response mode as they come. Returns False when the stream could
        not be sent to its end (the connection broke); a failure of `pieces` is reported in the trailers."""
        connection = self._connection
        connection.putrequest("POST", f"{self._base}/invocation/{request_id}/response", skip_accept_encoding=True)
        connection.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", STREAMING_CONTENT_TYPE)
        connection.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
        try:
            connection.endheaders()
            trailers = _send_chunks(connection, pieces)
            connection.send(b"0\r\n" + trailers + b"\r\n")
            self._finish(connection.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("the response stream could not be sent to its end: %s", described(exc))
            connection.close()
            return False
        return True

    def _call(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> http.client.HTTPResponse:
        try:
            self._connection.request(method, path, body=body, headers=dict(headers or {}))
            return self._connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            raise RuntimeApiError(f"{method} {path} failed: {exc}") from exc

    @staticmethod
    def _finish(response: http.client.HTTPResponse) -> None:
        body = response.read()
        if response.status >= 300:
            raise RuntimeApiError(f"the Runtime API answered {response.status}: {body[:200]!r}")


def _send_chunks(connection: http.client.HTTPConnection, pieces: Iterator[bytes]) -> bytes:
    """Sends each piece as one chunk; returns the trailers: none, or the error that stopped the pieces.
    A broken connection raises OSError."""
    while True:
        try:
            piece = next(pieces)
        except StopIteration:
            return b""
        except Exception as exc:  # noqa: BLE001 - the handler's body failed mid-stream: the trailers say so
            report = error_report(exc)
            logger.error("the response stream failed: %s", report)
            body = base64.b64encode(json.dumps(report).encode()).decode()
            return (
                f"Lambda-Runtime-Function-Error-Type: {report['errorType']}\r\n"
                f"Lambda-Runtime-Function-Error-Body: {body}\r\n"
            ).encode()
        if piece:
            connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))


def error_report(exc: BaseException) -> dict[str, Any]:
    """What Lambda is told of a failure, and logs: never the exception's text, which can quote a key (vmx.failures)."""
    where = described(exc)
    # texts that pass: API Gateway takes an authorizer's "Unauthorized" for a 401; an import's names a module
    kept = str(exc) == AUTHORIZER_DENIAL or isinstance(exc, ImportError)
    message = str(exc) if kept else f"{where['error_type']} (text withheld)"
    return {
        "errorMessage": message,
        "errorType": where["error_type"],
        "stackTrace": where["raised_at"],
    }


def _error_request(error: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Unhandled"}
    return json.dumps(error).encode(), headers


def load_handler(environ: Mapping[str, str]) -> Handler:
    """`_HANDLER` is `module.function`, the module found under LAMBDA_TASK_ROOT, as the managed runtime does."""
    module_name, _, function_name = environ["_HANDLER"].rpartition(".")
    task_root = environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def context_of(invocation: Invocation, environ: Mapping[str, str]) -> LambdaContext:
    name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    return LambdaContext(
        aws_request_id=invocation.request_id,
        invoked_function_arn=invocation.function_arn,
        deadline_ms=invocation.deadline_ms,
        function_name=name,
        function_version=environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        memory_limit_in_mb=int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0")),
        log_group_name=environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}"),
        log_stream_name=environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
    )


def serve_one(api: RuntimeApi, handler: Handler, environ: Mapping[str, str]) -> None:
    """One invocation, from asking for it to the work after its response."""
    invocation = api.next_invocation()
    if invocation.trace_id:
        os.environ[TRACE_ENV_VAR] = invocation.trace_id
    else:
        os.environ.pop(TRACE_ENV_VAR, None)
    try:
        event = json.loads(invocation.event)
        result = handler(event, context_of(invocation, environ))
        if not isinstance(result, StreamingResponse):
            payload = json.dumps(result).encode()
    except Exception as exc:  # noqa: BLE001 - the handler's failure is the invocation's error, as in the managed runtime
        # its stack trace travels in the error report, which Lambda logs; an authorizer's "Unauthorized" is routine
        logger.info("the handler failed: %s", type(exc).__name__)
        api.fail(invocation.request_id, error_report(exc))
        return
    if not isinstance(result, StreamingResponse):
        api.respond(invocation.request_id, payload)
        return
    try:
        api.stream(invocation.request_id, result.encoded())
    finally:
        # whether it was sent to its end or the line broke: stop the body, then the work after the response
        result.close()
        result.after()


def run(environ: Mapping[str, str]) -> int:
    """Serves invocations until the Runtime API goes away (Lambda then ends the process)."""
    # the handler's own logs go through Powertools; the SDKs' chatter stays out unless asked for
    logging.basicConfig(
        level=environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s %(message)s"
    )
    api = RuntimeApi(environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(environ)
    except Exception as exc:  # noqa: BLE001 - any import failure is the function's init error
        report = error_report(exc)
        logger.error("the handler could not be loaded: %s", report)
        api.fail_init(report)
        return 1
    while True:
        try:
            serve_one(api, handler, environ)
        except RuntimeApiError as exc:
            logger.error("the Runtime API failed: %s", described(exc))
            return 1

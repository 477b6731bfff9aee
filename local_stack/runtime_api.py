"""The Lambda Runtime API on loopback: what an execution environment's runtime asks for work and answers to.

In AWS each execution environment has a Runtime API of its own (`AWS_LAMBDA_RUNTIME_API`), which hands its
runtime one invocation at a time and takes back the answer: a JSON result, an error, or a response streamed in
chunks with the error, if any, in the trailers. `RuntimeEndpoint` is one of those on a loopback port;
`local_stack.lambda_service` starts one per instance and runs `python -m vmx.runtime` against it, the same loop
that runs in AWS.

An `Invocation` carries the answer back to whoever invoked: a streamed response piece by piece, each the
moment its chunk has been read. When the invoker no longer wants the rest (the client went away), the endpoint
drops the runtime's connection, so the runtime's next send fails and it closes the handler's body, as in AWS.
"""

import base64
import binascii
import contextlib
import enum
import json
import logging
import math
import re
import secrets
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any

logger = logging.getLogger("local_stack")

API_PREFIX = "/2018-06-01/runtime"
# What Lambda accepts as a buffered (not streamed) response.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# Pieces read from a stream but not yet taken by the invoker; beyond this the endpoint stops reading, so a
# slow client holds the function back through TCP as it does in AWS, instead of piling up here.
MAX_PENDING_PIECES = 64
_MAX_LINE_BYTES = 64 * 1024
_INVOCATION_PATH = re.compile(rf"{API_PREFIX}/invocation/([^/]+)/(response|error)")


@dataclass(frozen=True)
class FunctionFailure:
    """An invocation's error as the runtime reports it (errorType, errorMessage, stackTrace), or as Lambda
    itself reports one (a runtime that exited, a timeout)."""

    error_type: str
    message: str
    stack_trace: tuple[str, ...] = ()

    @classmethod
    def of(cls, document: Any, default_type: str) -> "FunctionFailure":
        fields = document if isinstance(document, dict) else {}
        error_type = fields.get("errorType")
        message = fields.get("errorMessage")
        trace = fields.get("stackTrace")
        return cls(
            error_type if isinstance(error_type, str) and error_type else default_type,
            message if isinstance(message, str) else "",
            tuple(str(line) for line in trace) if isinstance(trace, list) else (),
        )


@dataclass(frozen=True)
class Result:
    """A buffered response: the handler's result as JSON."""

    payload: bytes


@dataclass(frozen=True)
class StreamStarted:
    """The runtime began a response in the streaming mode: pieces follow, then StreamEnded."""


@dataclass(frozen=True)
class Piece:
    data: bytes


@dataclass(frozen=True)
class StreamEnded:
    # what the trailers reported, or why the stream broke off; None when it ended as it should
    failure: FunctionFailure | None


@dataclass(frozen=True)
class TimedOut:
    # True when no environment took the invocation in time (its initialisation took too long)
    before_handoff: bool


Answer = Result | FunctionFailure | StreamStarted | Piece | StreamEnded | TimedOut


class _Phase(enum.Enum):
    QUEUED = enum.auto()  # assigned to an environment that has not asked for it yet
    RUNNING = enum.auto()  # handed over; no answer yet
    STREAMING = enum.auto()
    DONE = enum.auto()


class Invocation:
    """One invocation, from the invoker to an environment and its answer back.

    The environment's side calls `hand_over`, then `respond` or `fail`, or `start_stream`, `relay` for each
    piece and `end_stream`; each says whether the invoker still wants it. The invoker's side reads
    `next_answer` until it has its answer (or StreamEnded), and calls `cancel` when it wants no more.
    """

    def __init__(self, event: bytes, timeout_seconds: float, max_pending_pieces: int = MAX_PENDING_PIECES):
        self.request_id = str(uuid.uuid4())
        self.trace_id = _new_trace_id()
        self.event = event
        self.timeout_seconds = timeout_seconds
        # Unix time in milliseconds by which it must end; set when it is handed over
        self.deadline_ms = 0
        self._max_pending_pieces = max_pending_pieces
        self._changed = threading.Condition()
        self._answers: deque[Answer] = deque()
        self._phase = _Phase.QUEUED
        self._handoff_by = math.inf
        self._deadline = math.inf
        self._abort: Callable[[], None] | None = None

    def assigned(self, handoff_by: float) -> None:
        """An environment will take it; if it has not by `handoff_by` (monotonic), the invocation times out."""
        with self._changed:
            self._handoff_by = handoff_by
            self._changed.notify_all()

    # --- the environment's side

    def hand_over(self) -> bool:
        """Starts the invocation's clock as the environment receives it; False if it is no longer wanted."""
        with self._changed:
            if self._phase is not _Phase.QUEUED:
                return False
            self._phase = _Phase.RUNNING
            self._deadline = time.monotonic() + self.timeout_seconds
            self.deadline_ms = int((time.time() + self.timeout_seconds) * 1000)
            self._changed.notify_all()
            return True

    def respond(self, payload: bytes) -> bool:
        return self._end(Result(payload), _Phase.RUNNING)

    def fail(self, failure: FunctionFailure) -> bool:
        """The invocation's error: its answer, or, mid-stream, the end of its stream."""
        with self._changed:
            if self._phase is _Phase.STREAMING:
                return self._end(StreamEnded(failure), _Phase.STREAMING)
            return self._end(failure, _Phase.QUEUED, _Phase.RUNNING)

    def start_stream(self, abort: Callable[[], None]) -> bool:
        """`abort` is called (from the invoker's thread) if the invoker stops wanting the stream."""
        with self._changed:
            if self._phase is not _Phase.RUNNING:
                return False
            self._phase = _Phase.STREAMING
            self._abort = abort
            self._answers.append(StreamStarted())
            self._changed.notify_all()
            return True

    def relay(self, data: bytes) -> bool:
        """Passes a piece on; waits while the invoker has not taken the earlier ones."""
        with self._changed:
            while self._phase is _Phase.STREAMING and len(self._answers) >= self._max_pending_pieces:
                self._changed.wait()
            if self._phase is not _Phase.STREAMING:
                return False
            self._answers.append(Piece(data))
            self._changed.notify_all()
            return True

    def end_stream(self, failure: FunctionFailure | None) -> bool:
        return self._end(StreamEnded(failure), _Phase.STREAMING)

    def _end(self, answer: Answer, *allowed: _Phase) -> bool:
        with self._changed:
            if self._phase not in allowed:
                return False
            self._phase = _Phase.DONE
            self._abort = None
            self._answers.append(answer)
            self._changed.notify_all()
            return True

    # --- the invoker's side

    def next_answer(self) -> Answer:
        """The next thing the environment sent; TimedOut once the invocation's time has run out."""
        with self._changed:
            while not self._answers:
                if self._phase is _Phase.DONE:
                    # cancelled or timed out already: nothing more will come
                    return StreamEnded(None)
                limit = self._handoff_by if self._phase is _Phase.QUEUED else self._deadline
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    timed_out = TimedOut(before_handoff=self._phase is _Phase.QUEUED)
                    self._phase = _Phase.DONE
                    self._changed.notify_all()
                    return timed_out
                self._changed.wait(None if math.isinf(remaining) else remaining)
            answer = self._answers.popleft()
            self._changed.notify_all()
            return answer

    @property
    def over(self) -> bool:
        """Answered, failed, cancelled or timed out: nothing more is wanted of the environment."""
        with self._changed:
            return self._phase is _Phase.DONE

    def cancel(self) -> None:
        """The invoker wants nothing more: a stream still being sent is cut off."""
        with self._changed:
            if self._phase is _Phase.DONE:
                return
            self._phase = _Phase.DONE
            abort, self._abort = self._abort, None
            self._changed.notify_all()
        if abort is not None:
            abort()


def _new_trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class RuntimeEndpoint:
    """One execution environment's Runtime API, on a loopback port of its own.

    It holds at most one invocation: assigned by `try_assign` while the environment is free, handed over when
    the environment asks for its next invocation, and the environment is free again only when it asks once
    more, after whatever its runtime does once the response is sent. `on_next` is called (with no lock held)
    each time the environment asks for an invocation: it may have just initialised, or be free for another.
    """

    def __init__(
        self,
        function_arn: str,
        init_timeout_seconds: float,
        on_next: Callable[[], None],
        host: str = "127.0.0.1",
    ) -> None:
        self.function_arn = function_arn
        self.init_failure: FunctionFailure | None = None
        self._on_next = on_next
        self._init_deadline = time.monotonic() + init_timeout_seconds
        self._changed = threading.Condition()
        self._assigned: Invocation | None = None
        self._handed_over = False
        self._initialised = False
        self._closed = False
        self._server = _RuntimeApiServer((host, 0), self)
        self._serving = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)
        self._serving.start()

    @property
    def address(self) -> str:
        """What AWS_LAMBDA_RUNTIME_API says: host:port."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def initialised(self) -> bool:
        """The environment has asked for an invocation at least once: its handler is loaded."""
        with self._changed:
            return self._initialised

    def try_assign(self, invocation: Invocation) -> bool:
        """Gives the environment `invocation` if it is free."""
        with self._changed:
            if self._closed or self._assigned is not None:
                return False
            self._assigned = invocation
            self._handed_over = False
            # a free environment that has initialised is waiting for it; one still initialising has until
            # its init deadline
            invocation.assigned(math.inf if self._initialised else self._init_deadline)
            self._changed.notify_all()
            return True

    def close(self, failure: FunctionFailure) -> None:
        """Stops serving; the invocation it holds, if any, fails with `failure`."""
        with self._changed:
            self._closed = True
            invocation, self._assigned = self._assigned, None
            self._changed.notify_all()
        if invocation is not None:
            invocation.fail(failure)
        self._server.shutdown()
        self._server.server_close()

    # --- what the environment's calls do

    def next_invocation(self) -> Invocation | None:
        """Blocks until there is an invocation to hand over; None once the endpoint is closed."""
        with self._changed:
            self._initialised = True
            previous = self._assigned if self._handed_over else None
            if previous is not None:
                self._assigned, self._handed_over = None, False
        if previous is not None:
            # asked for the next one without answering this one: it can get no answer now
            previous.fail(FunctionFailure("Runtime.NoResponse", "the runtime moved on without answering"))
        self._on_next()
        with self._changed:
            while True:
                if self._closed:
                    return None
                invocation = self._assigned
                if invocation is not None and not self._handed_over:
                    if invocation.hand_over():
                        self._handed_over = True
                        return invocation
                    self._assigned = None  # it timed out before the environment was ready
                    continue
                self._changed.wait()

    def invocation(self, request_id: str) -> Invocation | None:
        """The invocation being run, if `request_id` names it."""
        with self._changed:
            invocation = self._assigned
            if invocation is None or not self._handed_over or invocation.request_id != request_id:
                return None
            return invocation

    def record_init_failure(self, failure: FunctionFailure) -> None:
        with self._changed:
            self.init_failure = failure


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # closing never waits for a connection: an environment still sending is stopped by its process ending
    block_on_close = False

    def __init__(self, address: tuple[str, int], endpoint: RuntimeEndpoint) -> None:
        super().__init__(address, _RuntimeApiHandler)
        self.endpoint = endpoint

    def server_bind(self) -> None:
        """As HTTPServer's, without its reverse DNS lookup of the address: this server has no name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class MalformedBodyError(ValueError):
    """A request body whose framing cannot be read, or that ended early."""


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # each chunk the invoker relays onward, and each answer here, leaves at once
    disable_nagle_algorithm = True
    server: _RuntimeApiServer

    def do_GET(self) -> None:
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(404, _error_document("NotFound", f"no such path: {self.path}"))
            return
        endpoint = self.server.endpoint
        invocation = endpoint.next_invocation()
        if invocation is None:
            # the environment is being shut down: no answer, as when Lambda freezes and ends it
            self.close_connection = True
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": endpoint.function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        self._reply(200, invocation.event, headers)

    def do_POST(self) -> None:
        endpoint = self.server.endpoint
        if self.path == f"{API_PREFIX}/init/error":
            endpoint.record_init_failure(self._failure(self._read_body(MAX_RESPONSE_BYTES)))
            self._accepted()
            return
        matched = _INVOCATION_PATH.fullmatch(self.path)
        if matched is None:
            self.close_connection = True
            self._reply(404, _error_document("NotFound", f"no such path: {self.path}"))
            return
        invocation = endpoint.invocation(matched[1])
        if invocation is None:
            self.close_connection = True
            self._reply(400, _error_document("InvalidRequestID", "no invocation in progress has this id"))
            return
        if matched[2] == "error":
            answered = invocation.fail(self._failure(self._read_body(MAX_RESPONSE_BYTES)))
        elif self.headers.get("Lambda-Runtime-Function-Response-Mode", "").lower() == "streaming":
            self._relay(invocation)
            return
        else:
            payload = self._read_body(MAX_RESPONSE_BYTES)
            if payload is None:
                invocation.fail(
                    FunctionFailure(
                        "Function.ResponseSizeTooLarge",
                        f"the response is larger than the {MAX_RESPONSE_BYTES} bytes Lambda accepts",
                    )
                )
                self.close_connection = True
                self._reply(413, _error_document("RequestEntityTooLarge", "the response is too large"))
                return
            answered = invocation.respond(payload)
        if answered:
            self._accepted()
        else:
            self._reply(403, _error_document("InvalidStateTransition", "the invocation is over"))

    def _relay(self, invocation: Invocation) -> None:
        """Reads a streamed response chunk by chunk, passing each on as it arrives, then its trailers."""
        connection: socket.socket = self.connection

        def abort() -> None:
            # wakes this thread's read; it then drops the connection
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

        if not invocation.start_stream(abort):
            self.close_connection = True
            self._reply(403, _error_document("InvalidStateTransition", "the invocation is over"))
            return
        chunked = self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked"
        try:
            if chunked:
                while (piece := read_chunk(self.rfile)) is not None:
                    if not invocation.relay(piece):
                        self._drop()
                        return
                failure = trailer_failure(read_trailers(self.rfile))
            else:
                # not how vmx.runtime sends it, but the Runtime API takes it: one piece
                body = self._read_body(MAX_RESPONSE_BYTES) or b""
                if body and not invocation.relay(body):
                    self._drop()
                    return
                failure = None
        except (OSError, MalformedBodyError) as exc:
            if not invocation.end_stream(FunctionFailure("Runtime.TruncatedResponse", f"the stream broke off: {exc}")):
                self._drop()  # the invoker cut it off
                return
            self.close_connection = True
            return
        invocation.end_stream(failure)
        self._accepted()

    def _drop(self) -> None:
        """Ends the connection with a reset, so the runtime's next send fails rather than going nowhere."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _failure(self, body: bytes | None) -> FunctionFailure:
        default_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled"
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            document = {"errorMessage": (body or b"").decode(errors="replace")}
        return FunctionFailure.of(document, default_type)

    def _read_body(self, limit: int) -> bytes | None:
        """The whole body, or None (with the connection to be closed) when it is larger than `limit`."""
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            body = bytearray()
            while (piece := read_chunk(self.rfile)) is not None:
                body += piece
                if len(body) > limit:
                    self.close_connection = True
                    return None
            read_trailers(self.rfile)
            return bytes(body)
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            raise MalformedBodyError("Content-Length is not a number") from None
        if length > limit:
            self.close_connection = True
            return None
        body_bytes: bytes = self.rfile.read(length)
        return body_bytes

    def _accepted(self) -> None:
        self._reply(202, b'{"status":"OK"}')

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except MalformedBodyError:
            self.close_connection = True
            self._reply(400, _error_document("InvalidRequest", "the request body is malformed"))
        except OSError:
            # the environment went away (its process ended): nothing to answer
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Every invocation is two requests here; the gateway's access log is the one that matters."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


def _error_document(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def read_chunk(stream: BufferedIOBase) -> bytes | None:
    """The next chunk of a chunked body as soon as it has all arrived; None after the last (trailers follow)."""
    line = stream.readline(_MAX_LINE_BYTES)
    if not line.endswith(b"\n"):
        raise MalformedBodyError("the body ended before a chunk's size")
    try:
        size = int(line.split(b";")[0].strip(), 16)
    except ValueError:
        raise MalformedBodyError("malformed chunk size") from None
    if size < 0:
        raise MalformedBodyError("malformed chunk size")
    if size == 0:
        return None
    data = stream.read(size)
    if len(data) < size or stream.readline(_MAX_LINE_BYTES) not in (b"\r\n", b"\n"):
        raise MalformedBodyError("the body ended inside a chunk")
    return data


def read_trailers(stream: BufferedIOBase) -> dict[str, str]:
    """The trailer fields after the last chunk, by lower-case name."""
    trailers: dict[str, str] = {}
    while True:
        line = stream.readline(_MAX_LINE_BYTES)
        if not line.endswith(b"\n"):
            raise MalformedBodyError("the body ended inside its trailers")
        if line in (b"\r\n", b"\n"):
            return trailers
        name, _, value = line.decode("latin-1").partition(":")
        trailers[name.strip().lower()] = value.strip()


def trailer_failure(trailers: dict[str, str]) -> FunctionFailure | None:
    """The error a runtime reports in a streamed response's trailers, as vmx.runtime writes them."""
    error_type = trailers.get("lambda-runtime-function-error-type")
    if error_type is None:
        return None
    try:
        document = json.loads(base64.b64decode(trailers.get("lambda-runtime-function-error-body", ""), validate=True))
    except (ValueError, binascii.Error):
        document = {}
    return FunctionFailure.of(document, error_type)

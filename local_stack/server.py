"""The loopback HTTP server in front of `ApiGateway`: framing, keep-alive and the access log."""

import logging
import socket
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from local_stack.console import ConsoleFiles
from local_stack.gateway import ApiGateway, HttpRequest, HttpResponse, body_too_large, error_response

logger = logging.getLogger("local_stack")


# How long a request's body may take to arrive, whole: a Content-Length larger than what is sent, or a body
# trickled in, must not hold a worker (API Gateway's front end times such a request out too).
BODY_READ_SECONDS = 10.0
# The stdlib's own refusals, before any route is known, by status; each is answered in the API's JSON.
_REFUSALS = {
    HTTPStatus.BAD_REQUEST: ("bad_request", "the request line or its headers cannot be read"),
    HTTPStatus.REQUEST_URI_TOO_LONG: ("uri_too_long", "the request target is too long"),
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: ("headers_too_large", "the request headers are too large or too many"),
    HTTPStatus.NOT_IMPLEMENTED: ("not_implemented", "this method is not one the API answers"),
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: ("http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served"),
}


class BadRequestError(ValueError):
    """A request whose framing cannot be read."""


class BodyTimeoutError(TimeoutError):
    """A request body that did not arrive, whole, in time."""


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


class _TimedBody:
    """The request stream, read before a deadline: each read waits at most for the time left, so the whole body
    (however it trickles in) takes no longer than `seconds`."""

    def __init__(self, stream: Any, connection: socket.socket, seconds: float) -> None:
        self._stream = stream
        self._connection = connection
        self._deadline = time.monotonic() + seconds

    def read(self, size: int, /) -> bytes:
        data = bytearray()
        while len(data) < size:
            piece = self._timed(self._stream.read1, size - len(data))
            if not piece:
                break
            data += piece
        return bytes(data)

    def readline(self, size: int, /) -> bytes:
        return bytes(self._timed(self._stream.readline, size))

    def _timed(self, read: Any, size: int) -> bytes:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise BodyTimeoutError("the request body did not arrive in time")
        self._connection.settimeout(left)
        try:
            return bytes(read(size))
        except TimeoutError:
            raise BodyTimeoutError("the request body did not arrive in time") from None


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        gateway: ApiGateway,
        max_body_bytes: int,
        console: ConsoleFiles | None = None,
        body_read_seconds: float = BODY_READ_SECONDS,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway
        self.max_body_bytes = max_body_bytes
        self.console = console
        self.body_read_seconds = body_read_seconds

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length or is chunked
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    # A streamed piece must leave at once, not wait ~40 ms for the previous one's ACK (Nagle's algorithm).
    disable_nagle_algorithm = True
    server: GatewayServer

    def _dispatch(self) -> None:
        started = time.perf_counter()
        path = self.path.partition("?")[0]
        try:
            body = read_body(
                _TimedBody(self.rfile, self.connection, self.server.body_read_seconds),
                self.headers.get("Transfer-Encoding"),
                self.headers.get("Content-Length"),
                self.server.max_body_bytes,
            )
        except BadRequestError as exc:
            response = error_response(400, "bad_request", str(exc), ("Connection", "close"))
        except BodyTimeoutError as exc:
            response = error_response(408, "request_timeout", str(exc), ("Connection", "close"))
        else:
            if body is None:
                # WAF rejects these before API Gateway; the unread body leaves the connection unusable.
                response = body_too_large(self.server.max_body_bytes, ("Connection", "close"))
            else:
                request = HttpRequest(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
                response = self._serve(request)
        # the idle keep-alive timeout again, for the response and the next request
        self.connection.settimeout(self.timeout)
        self._write(response)
        # Never headers, query strings or bodies: they carry API keys and provider credentials.
        logger.info("%s %s %d %.1fms", self.command, path, response.status, (time.perf_counter() - started) * 1000)

    def _serve(self, request: HttpRequest) -> HttpResponse:
        # In AWS the console is on CloudFront and the API on API Gateway; here one origin serves both.
        if self.server.console is not None and not request.path.startswith("/api/"):
            return self.server.console.handle(request)
        return self.server.gateway.handle(request)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._write_chunks(response.stream)
        finally:
            # after the last byte, or once the client has gone: the function's work after its response
            if response.finish is not None:
                response.finish()

    def _write_chunks(self, pieces: Iterator[bytes]) -> None:
        """Each piece goes out as one chunk the moment it is produced."""
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            logger.info("%s %s: the client went away during the response", self.command, self.path.partition("?")[0])
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's refusals (a request line it cannot read, a target too long, a method it has no do_ for)
        in the API's JSON rather than its HTML page; never quoting the request, which can hold a key."""
        status = HTTPStatus(code)
        error_code, description = _REFUSALS.get(status, ("bad_request", status.phrase))
        self.close_connection = True
        # the stdlib takes an unreadable request line for HTTP/0.9, which has no status line or headers
        self.request_version = self.protocol_version
        self._write(error_response(code, error_code, description, ("Connection", "close")))
        logger.info("refused a request it cannot read: %d", code)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The stdlib's line includes the query string; `_dispatch` logs its own."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.warning(format, *args)


def read_body(stream: Readable, transfer_encoding: str | None, content_length: str | None, limit: int) -> bytes | None:
    """Reads a request body, or returns None, having read no more than `limit` bytes, when it is larger."""
    if transfer_encoding is not None:
        if transfer_encoding.strip().lower() != "chunked":
            raise BadRequestError(f"unsupported Transfer-Encoding {transfer_encoding!r}")
        return _read_chunked(stream, limit)
    try:
        length = int(content_length or "0")
    except ValueError:
        raise BadRequestError("Content-Length is not a number") from None
    if length < 0:
        raise BadRequestError("Content-Length is negative")
    if length > limit:
        return None
    return stream.read(length)


def _read_chunked(stream: Readable, limit: int) -> bytes | None:
    body = bytearray()
    while True:
        try:
            size = int(stream.readline(1024).split(b";")[0], 16)
        except ValueError:
            raise BadRequestError("malformed chunk size") from None
        if size == 0:
            break
        if len(body) + size > limit:
            return None
        body += stream.read(size)
        stream.readline(1024)  # the CRLF after each chunk
    while stream.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
        pass
    return bytes(body)

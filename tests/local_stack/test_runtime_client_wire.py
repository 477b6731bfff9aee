"""What vmx.runtime sends the Lambda Runtime API, byte for byte where AWS prescribes it: the streaming response
mode's headers, the chunked body with the prelude first, and the error trailers of a stream that failed."""

import base64
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from vmx.http.streaming import PRELUDE_DELIMITER, StreamingResponse
from vmx.runtime.client import AUTHORIZER_DENIAL, RuntimeApi, error_report


class RecordingRuntimeApi:
    """Accepts one request on a loopback socket, keeps its raw bytes, answers 202."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.raw = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            connection.settimeout(10)
            while not self.raw.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in self.raw:
                received = connection.recv(65536)
                if not received:
                    break
                self.raw += received
            connection.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")

    def request(self) -> tuple[str, dict[str, str], bytes]:
        self._thread.join(10)
        self._listener.close()
        head, _, body = self.raw.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        return request_line, headers, body


def dechunked(body: bytes) -> tuple[list[bytes], bytes]:
    """The chunks of a chunked body, and its trailer section."""
    chunks: list[bytes] = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks, body
        chunks.append(body[:size])
        body = body[size + 2 :]


def test_a_streamed_response_is_posted_in_the_streaming_mode_with_its_prelude_first() -> None:
    api = RecordingRuntimeApi()
    response = StreamingResponse(200, {"Content-Type": ["text/event-stream"]}, iter([b"one", b"two"]), lambda: None)

    sent = RuntimeApi(api.address).stream("req-1", response.encoded())
    request_line, headers, body = api.request()

    assert sent is True
    assert request_line == "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1"
    assert headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert headers["Transfer-Encoding"] == "chunked"
    assert headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"
    assert headers["Trailer"] == "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    chunks, trailers = dechunked(body)
    prelude, _, rest = chunks[0].partition(PRELUDE_DELIMITER)
    assert json.loads(prelude) == {
        "statusCode": 200,
        "multiValueHeaders": {"Content-Type": ["text/event-stream"]},
        "cookies": [],
    }
    assert rest == b""
    assert chunks[1:] == [b"one", b"two"]
    assert trailers == b"\r\n"


def test_a_body_that_fails_mid_stream_is_reported_in_the_trailers_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing() -> Iterator[bytes]:
        yield b"one"
        raise ValueError("Invalid header value b'Bearer sk-secret\\n'")

    api = RecordingRuntimeApi()
    response = StreamingResponse(200, {}, failing(), lambda: None)

    RuntimeApi(api.address).stream("req-2", response.encoded())
    _, _, body = api.request()

    chunks, trailers = dechunked(body)
    assert chunks[1:] == [b"one"]
    fields = dict(line.split(": ", 1) for line in trailers.decode().strip().split("\r\n"))
    assert fields["Lambda-Runtime-Function-Error-Type"] == "ValueError"
    report = json.loads(base64.b64decode(fields["Lambda-Runtime-Function-Error-Body"]))
    assert report["errorMessage"] == "ValueError (text withheld)"
    assert report["stackTrace"][-1].startswith("test_runtime_client_wire.py:")
    assert "sk-secret" not in json.dumps(report) + caplog.text
    assert "ValueError" in caplog.text


def test_an_authorizers_unauthorized_keeps_its_text_which_api_gateway_reads() -> None:
    assert error_report(Exception(AUTHORIZER_DENIAL))["errorMessage"] == "Unauthorized"
    assert error_report(Exception("Unauthorized: sk-secret"))["errorMessage"] == "Exception (text withheld)"


@pytest.mark.parametrize("status", [200, 429])
def test_the_status_travels_in_the_prelude_whatever_it_is(status: int) -> None:
    api = RecordingRuntimeApi()
    response = StreamingResponse(status, {}, iter([b"{}"]), lambda: None)

    RuntimeApi(api.address).stream("req-3", response.encoded())
    _, _, body = api.request()

    chunks, _ = dechunked(body)
    assert json.loads(chunks[0].partition(PRELUDE_DELIMITER)[0])["statusCode"] == status

"""API Gateway's STREAM transfer mode and its authorizer cache, as the local gateway emulates them over real HTTP:
a streaming function's prelude becomes the status and headers, each piece is flushed to the client as the
handler yields it (chunked), its after-work runs once the client has the last byte or has gone; the
authorizer's answer is kept per Authorization header for its TTL."""

import json
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.system import AUTHORIZER, COMPLETIONS, FUNCTIONS, MAX_BODY_BYTES, Route
from local_stack.gateway import ApiGateway, HttpRequest
from local_stack.lambda_runtime import LambdaRuntime
from local_stack.server import GatewayServer
from vmx.http.streaming import StreamingResponse

ROUTES = (
    Route("GET", "/stream", COMPLETIONS.name, authorized=False),
    Route("GET", "/things", next(f.name for f in FUNCTIONS if f.name not in (AUTHORIZER.name, COMPLETIONS.name))),
)


class SteppedHandler:
    """Streams three pieces; the second waits until the test lets it go. Records what happened after."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.after_ran = threading.Event()
        self.closed_early = threading.Event()
        self.events: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> StreamingResponse:
        def body() -> Iterator[bytes]:
            try:
                yield b"first "
                self.release.wait(10)
                yield b"second "
                yield b"third"
                self.events.append("body ended")
            except GeneratorExit:
                self.closed_early.set()
                raise

        def after() -> None:
            self.events.append("after")
            self.after_ran.set()

        return StreamingResponse(201, {"Content-Type": ["text/plain"], "X-Step": ["a", "b"]}, body(), after)


class CountingAuthorizer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls += 1
        if event["headers"]["Authorization"] == "Bearer unknown":
            raise Exception("Unauthorized")
        statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/GET/*"}
        return {"principalId": "k", "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}


@pytest.fixture
def handler() -> SteppedHandler:
    return SteppedHandler()


@pytest.fixture
def base_url(handler: SteppedHandler) -> Iterator[str]:
    def buffered(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "{}"}

    handlers: dict[str, Any] = {function.name: buffered for function in FUNCTIONS}
    runtime = LambdaRuntime(FUNCTIONS, {**handlers, COMPLETIONS.name: handler})
    server = GatewayServer(("127.0.0.1", 0), ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name), MAX_BODY_BYTES)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    yield f"http://127.0.0.1:{server.port}"
    handler.release.set()
    server.shutdown()
    serving.join()
    server.server_close()


def test_the_prelude_is_the_status_and_headers_and_each_piece_comes_as_it_is_yielded(
    base_url: str, handler: SteppedHandler
) -> None:
    with requests.get(f"{base_url}/stream", stream=True, timeout=10) as response:
        pieces = response.iter_content(chunk_size=None)
        first = next(pieces)

        # the handler is still holding its second piece, and nothing has run after it
        assert first == b"first "
        assert not handler.after_ran.is_set()
        handler.release.set()
        rest = b"".join(pieces)

    assert response.status_code == 201
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["X-Step"] == "a, b"
    assert rest == b"second third"
    assert handler.after_ran.wait(5)
    assert handler.events == ["body ended", "after"]


def test_a_client_that_leaves_closes_the_body_and_the_after_work_still_runs(
    base_url: str, handler: SteppedHandler
) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(b"GET /stream HTTP/1.1\r\nHost: local\r\n\r\n")
        received = b""
        while b"first " not in received:
            received += client.recv(4096)
        # closing with a reset, as a client that dies does: the server's next write fails at once
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.release.set()

    assert handler.after_ran.wait(5)
    assert handler.closed_early.wait(5)
    assert "body ended" not in handler.events


def test_a_streaming_function_that_answers_without_a_prelude_is_a_502() -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "not streamed"}

    runtime = LambdaRuntime(FUNCTIONS, {function.name: broken for function in FUNCTIONS})
    gateway = ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name)

    response = gateway.handle(HttpRequest("GET", "/stream", [], b"", "127.0.0.1"))

    assert response.status == 502
    assert json.loads(response.body)["error"]["code"] == "internal_error"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached_gateway(authorizer: CountingAuthorizer, clock: Clock) -> ApiGateway:
    def buffered(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "{}"}

    runtime = LambdaRuntime(FUNCTIONS, {**{f.name: buffered for f in FUNCTIONS}, AUTHORIZER.name: authorizer})
    return ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name, authorizer_cache_seconds=60, monotonic=clock)


def get(gateway: ApiGateway, token: str) -> int:
    headers = [("Authorization", f"Bearer {token}")]
    return gateway.handle(HttpRequest("GET", "/things", headers, b"", "127.0.0.1")).status


def test_the_authorizer_answer_is_kept_per_authorization_header_for_its_ttl() -> None:
    authorizer, clock = CountingAuthorizer(), Clock()
    gateway = cached_gateway(authorizer, clock)

    statuses = [get(gateway, "one"), get(gateway, "one"), get(gateway, "two")]
    clock.now += 59
    statuses.append(get(gateway, "one"))
    calls_within_ttl = authorizer.calls
    clock.now += 2
    statuses.append(get(gateway, "one"))

    assert statuses == [200] * 5
    assert calls_within_ttl == 2  # "one" once, "two" once
    assert authorizer.calls == 3  # "one" again once its answer expired


def test_a_refusal_is_not_kept_and_a_flush_forgets_every_answer() -> None:
    authorizer, clock = CountingAuthorizer(), Clock()
    gateway = cached_gateway(authorizer, clock)

    refused = [get(gateway, "unknown"), get(gateway, "unknown")]
    get(gateway, "one")
    gateway.flush_authorizer_cache()
    get(gateway, "one")

    assert refused == [401, 401]
    assert authorizer.calls == 4

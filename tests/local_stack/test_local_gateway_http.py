"""The gateway over real HTTP on an ephemeral port, with fake handlers in place of `functions/`."""

import base64
import io
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests

from infra.system import AUTHORIZER, FUNCTIONS, MAX_BODY_BYTES, Route
from local_stack.gateway import ApiGateway
from local_stack.lambda_runtime import LambdaRuntime
from local_stack.server import BadRequestError, GatewayServer, read_body

HANDLER = next(function.name for function in FUNCTIONS if function is not AUTHORIZER)
ROUTES = (
    Route("GET", "/things/{thingId}", HANDLER),
    Route("POST", "/things/{thingId}", HANDLER),
    Route("GET", "/boom", HANDLER),
    Route("GET", "/binary", HANDLER),
    Route("GET", "/public", HANDLER, authorized=False),
)


class FakeAuthorizer:
    """Decides by the Authorization header, as the real one decides by the API key."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls += 1
        # header names as the client spelled them (the OpenAI SDK sends `authorization`)
        token = next(value for name, value in event["headers"].items() if name.lower() == "authorization")
        if token == "Bearer unknown":
            raise Exception("Unauthorized")  # the one way a Lambda authorizer says 401
        if token == "Bearer crash":
            raise RuntimeError("authorizer bug")
        effect = "Deny" if token == "Bearer deny" else "Allow"
        return {
            "principalId": "key_1",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": effect, "Action": "execute-api:Invoke", "Resource": event["methodArn"]}],
            },
            "context": {"workspaceId": "ws_1", "scopes": 3},
        }


def fake_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["resource"] == "/boom":
        raise RuntimeError("handler bug")
    if event["resource"] == "/binary":
        body = base64.b64encode(b"\x00\xff").decode()
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": body,
            "isBase64Encoded": True,
        }
    echoed = {
        "authorizer": event["requestContext"]["authorizer"],
        "pathParameters": event["pathParameters"],
        "query": event["queryStringParameters"],
        "body": event["body"],
        "sourceIp": event["requestContext"]["identity"]["sourceIp"],
        "remainingMs": context.get_remaining_time_in_millis(),
    }
    return {"statusCode": 201, "multiValueHeaders": {"X-Echo": ["a", "b"]}, "body": json.dumps(echoed)}


@pytest.fixture
def authorizer() -> FakeAuthorizer:
    return FakeAuthorizer()


@pytest.fixture
def base_url(authorizer: FakeAuthorizer) -> Iterator[str]:
    handlers = {function.name: fake_handler for function in FUNCTIONS} | {AUTHORIZER.name: authorizer}
    runtime = LambdaRuntime(FUNCTIONS, handlers)
    server = GatewayServer(("127.0.0.1", 0), ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name), MAX_BODY_BYTES)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    serving.join()
    server.server_close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}
OPENAI_TYPES |= {404: "invalid_request_error", 405: "invalid_request_error", 408: "invalid_request_error"}
OPENAI_TYPES |= {414: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 501: "api_error"}
OPENAI_TYPES |= {502: "api_error"}


def error_of(response: requests.Response) -> dict[str, Any]:
    """The code and message of an error the gateway answers itself, having checked that it reads both as our
    shape (no details) and as OpenAI's (its type for the status, no param), with the security headers."""
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error.pop("details") == []
    assert error.pop("type") == OPENAI_TYPES[response.status_code]
    assert error.pop("param") is None
    return error


def test_an_unknown_path_is_404(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/nowhere?x=1")

    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "no such route: GET /nowhere"}


def test_a_trailing_slash_is_404(base_url: str, http: requests.Session) -> None:
    assert http.get(f"{base_url}/things/1/", headers={"Authorization": "Bearer ok"}).status_code == 404


def test_a_wrong_method_is_a_405_naming_the_methods_of_the_path_as_the_stacks_any_methods_do(
    base_url: str, http: requests.Session, authorizer: FakeAuthorizer
) -> None:
    for method in ("DELETE", "PATCH", "OPTIONS", "HEAD"):
        response = http.request(method, f"{base_url}/things/1", headers={"Authorization": "Bearer ok"})

        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, POST"
        if method != "HEAD":
            assert error_of(response) == {"code": "method_not_allowed", "message": "this route answers only GET, POST"}
    assert authorizer.calls == 0


def test_head_gets_the_status_and_length_without_a_body(base_url: str, http: requests.Session) -> None:
    response = http.head(f"{base_url}/nowhere")

    assert response.status_code == 404
    assert int(response.headers["Content-Length"]) > 0
    assert response.content == b""


def test_no_authorization_header_is_401_without_calling_the_authorizer(
    base_url: str, http: requests.Session, authorizer: FakeAuthorizer
) -> None:
    for headers in ({}, {"Authorization": ""}):
        response = http.get(f"{base_url}/things/1", headers=headers)

        assert response.status_code == 401
        assert error_of(response) == {"code": "unauthorized", "message": "Unauthorized"}
    assert authorizer.calls == 0


def test_an_unauthorized_error_from_the_authorizer_is_401(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/things/1", headers={"Authorization": "Bearer unknown"})

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_a_deny_policy_is_403(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/things/1", headers={"Authorization": "Bearer deny"})

    assert response.status_code == 403
    assert error_of(response) == {
        "code": "forbidden",
        "message": "User is not authorized to access this resource",
    }


def test_a_failing_authorizer_is_500(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/things/1", headers={"Authorization": "Bearer crash"})

    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"


def test_the_authorizer_context_and_the_request_reach_the_handler(base_url: str, http: requests.Session) -> None:
    response = http.post(
        f"{base_url}/things/a%20b?q=1",
        headers={"Authorization": "Bearer ok", "X-Forwarded-For": "203.0.113.9"},
        json={"name": "x"},
    )

    assert response.status_code == 201
    assert response.headers["X-Echo"] == "a, b"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-amzn-RequestId"]
    echoed = response.json()
    assert echoed["authorizer"] == {"workspaceId": "ws_1", "scopes": "3", "principalId": "key_1"}
    assert echoed["pathParameters"] == {"thingId": "a b"}
    assert echoed["query"] == {"q": "1"}
    assert json.loads(echoed["body"]) == {"name": "x"}
    assert echoed["sourceIp"] == "127.0.0.1"
    assert 0 < echoed["remainingMs"] <= 15_000


def test_a_public_route_skips_the_authorizer(base_url: str, http: requests.Session, authorizer: FakeAuthorizer) -> None:
    response = http.get(f"{base_url}/public")

    assert response.status_code == 201
    assert response.json()["authorizer"] is None
    assert authorizer.calls == 0


def test_a_body_over_the_limit_is_400_without_calling_anything(
    base_url: str, http: requests.Session, authorizer: FakeAuthorizer
) -> None:
    response = http.post(
        f"{base_url}/things/1", headers={"Authorization": "Bearer ok"}, data=b"x" * (MAX_BODY_BYTES + 1)
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "body_too_large"
    assert authorizer.calls == 0


def test_a_chunked_body_is_read_and_limited(base_url: str, http: requests.Session) -> None:
    headers = {"Authorization": "Bearer ok"}

    small = http.post(f"{base_url}/things/1", headers=headers, data=iter([b'{"a":', b" 1}"]))
    large = http.post(f"{base_url}/things/1", headers=headers, data=iter([b"x" * MAX_BODY_BYTES, b"x"]))

    assert small.status_code == 201
    assert small.json()["body"] == '{"a": 1}'
    assert large.status_code == 400


def test_a_handler_exception_is_502(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/boom", headers={"Authorization": "Bearer ok"})

    assert response.status_code == 502
    assert error_of(response) == {"code": "internal_error", "message": "Internal server error"}


def test_a_base64_response_is_decoded(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/binary", headers={"Authorization": "Bearer ok"})

    assert response.status_code == 200
    assert response.content == b"\x00\xff"


def test_concurrent_requests_on_kept_alive_connections(base_url: str) -> None:
    def call(results: list[int]) -> None:
        with requests.Session() as session:
            for _ in range(5):
                response = session.get(f"{base_url}/things/1", headers={"Authorization": "Bearer ok"})
                results.append(response.status_code)

    results: list[int] = []
    threads = [threading.Thread(target=call, args=(results,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [201] * 20


@pytest.mark.parametrize(
    ("transfer_encoding", "content_length", "raw", "expected"),
    [
        (None, "5", b"hello, and more", b"hello"),
        (None, None, b"", b""),
        (None, "11", b"", None),
        ("chunked", None, b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: t\r\n\r\n", b"abcde"),
    ],
)
def test_read_body(
    transfer_encoding: str | None, content_length: str | None, raw: bytes, expected: bytes | None
) -> None:
    assert read_body(io.BytesIO(raw), transfer_encoding, content_length, 10) == expected


@pytest.mark.parametrize(("transfer_encoding", "content_length"), [(None, "x"), (None, "-1"), ("gzip", None)])
def test_unreadable_framing_is_a_bad_request(transfer_encoding: str | None, content_length: str | None) -> None:
    with pytest.raises(BadRequestError):
        read_body(io.BytesIO(b""), transfer_encoding, content_length, 10)


def test_openai_sdks_read_the_gateways_own_errors_as_theirs(base_url: str) -> None:
    """Under an OpenAI base URL the gateway's 401, 404 and 405 raise the SDK's own exceptions with our code."""
    # Given a client whose base URL is the parent of routes, as the completions' base URL is
    client = openai.OpenAI(base_url=f"{base_url}/things", api_key="unknown", max_retries=0)

    # When its key is refused, it calls a path no route has, or a method the path lacks
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        client.get("1", cast_to=object)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="any", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.APIStatusError) as not_allowed:
        client.delete("1", cast_to=object)

    # Then each is told in OpenAI's fields
    assert (unauthorized.value.code, unauthorized.value.type, unauthorized.value.param) == (
        "unauthorized",
        "authentication_error",
        None,
    )
    assert unauthorized.value.message == "Error code: 401 - Unauthorized"
    assert (not_found.value.code, not_found.value.type) == ("not_found", "invalid_request_error")
    assert not_found.value.message.endswith(" - no such route: POST /things/chat/completions")
    assert not_allowed.value.status_code == 405
    assert not_allowed.value.code == "method_not_allowed"


def exchange(base_url: str, raw: bytes, pause_seconds: float = 0.0) -> tuple[bytes, float]:
    """What the server answers to `raw`, sent as is (in pieces `pause_seconds` apart when set), read until it
    closes the connection; and how long that took."""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        if pause_seconds:
            for byte in raw:
                connection.sendall(bytes([byte]))
                time.sleep(pause_seconds)
        else:
            connection.sendall(raw)
        answer = b""
        while piece := connection.recv(65536):
            answer += piece
    return answer, time.monotonic() - started


def parsed(answer: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"BREW /things/1 HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented"),
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /things/1 HTTP/7.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /things/1 HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431, "headers_too_large"),
    ],
    ids=["long target", "unknown method", "bad request line", "bad version", "too many headers"],
)
def test_what_the_server_cannot_read_is_refused_in_json_and_the_connection_closed(
    base_url: str, raw: bytes, status: int, code: str
) -> None:
    answer, _ = exchange(base_url, raw)

    answered, headers, body = parsed(answer)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["connection"] == "close"
    assert body["error"]["code"] == code
    assert body["error"]["type"] == ("api_error" if status >= 500 else "invalid_request_error")
    # never the request, which can hold a key
    assert b"aaaa" not in json.dumps(body).encode() and "BREW" not in body["error"]["message"]


@pytest.fixture
def impatient_url(authorizer: FakeAuthorizer) -> Iterator[str]:
    """The gateway with a body deadline short enough for a test."""
    handlers = {function.name: fake_handler for function in FUNCTIONS} | {AUTHORIZER.name: authorizer}
    gateway = ApiGateway(ROUTES, LambdaRuntime(FUNCTIONS, handlers).invoke, AUTHORIZER.name)
    server = GatewayServer(("127.0.0.1", 0), gateway, MAX_BODY_BYTES, body_read_seconds=0.5)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    serving.join()
    server.server_close()


HEAD_OF_A_POST = b"POST /things/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Type: application/json\r\n"


def test_a_body_shorter_than_its_content_length_is_a_408_once_the_deadline_passes(
    impatient_url: str, authorizer: FakeAuthorizer
) -> None:
    answer, seconds = exchange(impatient_url, HEAD_OF_A_POST + b"Content-Length: 100\r\n\r\n" + b'{"a": 1}')

    status, headers, body = parsed(answer)
    assert status == 408
    assert headers["connection"] == "close"
    assert body["error"]["code"] == "request_timeout"
    assert 0.4 < seconds < 5
    assert authorizer.calls == 0


def test_a_body_trickled_in_is_cut_off_at_the_deadline_not_at_each_pause(impatient_url: str) -> None:
    # a byte every 0.1 s never leaves a single read waiting long, but the whole takes 3 s
    body = b"x" * 30
    raw = HEAD_OF_A_POST + f"Content-Length: {len(body)}\r\n\r\n".encode()
    host, port = impatient_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        for byte in body:
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if b"\r\n\r\n" in answer or select_readable(connection):
                break
        while piece := connection.recv(65536):
            answer += piece
    seconds = time.monotonic() - started

    status, _, error = parsed(answer)
    assert status == 408
    assert error["error"]["code"] == "request_timeout"
    assert seconds < 2


def select_readable(connection: socket.socket) -> bool:
    readable, _, _ = select.select([connection], [], [], 0)
    return bool(readable)


def test_a_body_in_time_is_read_whole_on_a_connection_kept_alive(impatient_url: str, http: requests.Session) -> None:
    for _ in range(3):
        response = http.post(f"{impatient_url}/things/1", headers={"Authorization": "Bearer ok"}, json={"a": 1})

        assert response.status_code == 201
        assert json.loads(response.json()["body"]) == {"a": 1}

"""The gateway over real HTTP on an ephemeral port, with fake handlers in place of `functions/`."""

import base64
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

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
        token = event["headers"]["Authorization"]
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


def error_of(response: requests.Response) -> dict[str, Any]:
    """The error of a response in our shape; without details, as every error the gateway answers itself."""
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error.pop("details") == []
    return error


def test_an_unknown_path_is_404(base_url: str, http: requests.Session) -> None:
    response = http.get(f"{base_url}/nowhere?x=1")

    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "no such route: GET /nowhere"}


def test_a_trailing_slash_is_404(base_url: str, http: requests.Session) -> None:
    assert http.get(f"{base_url}/things/1/", headers={"Authorization": "Bearer ok"}).status_code == 404


def test_a_wrong_method_is_404_as_in_api_gateway(
    base_url: str, http: requests.Session, authorizer: FakeAuthorizer
) -> None:
    response = http.delete(f"{base_url}/things/1", headers={"Authorization": "Bearer ok"})

    assert response.status_code == 404
    assert "Allow" not in response.headers
    assert error_of(response) == {"code": "not_found", "message": "no such route: DELETE /things/1"}
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

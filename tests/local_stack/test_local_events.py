"""The API Gateway REST v1 proxy and REQUEST authorizer events the gateway builds."""

import base64

from infra.system import Route
from local_stack.gateway import HttpRequest, RouteMatch, build_authorizer_event, build_proxy_event

ROUTE = Route("POST", "/workspaces/{workspaceId}/things", "tenancy")


def request(
    target: str = "/workspaces/ws%201/things", body: bytes = b"", headers: tuple[tuple[str, str], ...] = ()
) -> HttpRequest:
    return HttpRequest(
        method="POST",
        target=target,
        headers=[("Host", "127.0.0.1:3000"), ("User-Agent", "tests"), *headers],
        body=body,
        source_ip="127.0.0.7",
    )


MATCH = RouteMatch(ROUTE, {"workspaceId": "ws 1"})


def proxy_event(http_request: HttpRequest, authorizer: dict[str, str] | None = None) -> dict[str, object]:
    return build_proxy_event(
        http_request, MATCH, request_id="req-1", time_epoch_ms=1_700_000_000_000, authorizer=authorizer
    )


def test_a_proxy_event_carries_the_route_the_path_and_the_context() -> None:
    event = proxy_event(request(body=b'{"name": "x"}'), authorizer={"principalId": "key_1", "ws": "ws 1"})

    assert event["resource"] == "/workspaces/{workspaceId}/things"
    assert event["path"] == "/workspaces/ws%201/things"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"workspaceId": "ws 1"}
    assert event["stageVariables"] is None
    assert event["body"] == '{"name": "x"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert isinstance(context, dict)
    assert context["resourcePath"] == ROUTE.path
    assert context["path"] == "/local/workspaces/ws%201/things"
    assert context["stage"] == "local"
    assert context["requestId"] == "req-1"
    assert context["requestTimeEpoch"] == 1_700_000_000_000
    assert context["identity"]["userAgent"] == "tests"
    assert context["authorizer"] == {"principalId": "key_1", "ws": "ws 1"}


def test_source_ip_is_the_tcp_peer_never_x_forwarded_for() -> None:
    event = proxy_event(request(headers=(("X-Forwarded-For", "203.0.113.9"),)))

    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.7"  # type: ignore[index]


def test_query_parameters_are_none_when_absent() -> None:
    event = proxy_event(request())

    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None


def test_query_parameters_are_decoded_and_the_last_value_wins() -> None:
    event = proxy_event(request("/workspaces/ws%201/things?a=1&b=x%20y&a=2&flag"))

    assert event["queryStringParameters"] == {"a": "2", "b": "x y", "flag": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"], "flag": [""]}
    assert event["path"] == "/workspaces/ws%201/things"


def test_repeated_headers_are_single_valued_last_and_multi_valued_all() -> None:
    http_request = HttpRequest("GET", "/", [("X-Tag", "a"), ("X-Tag", "b")], b"", "127.0.0.1")

    event = proxy_event(http_request)

    assert event["headers"] == {"X-Tag": "b"}
    assert event["multiValueHeaders"] == {"X-Tag": ["a", "b"]}


def test_a_body_that_is_not_utf8_is_base64_encoded() -> None:
    payload = bytes([0xFF, 0x00, 0xC3])

    event = proxy_event(request(body=payload))

    assert event["isBase64Encoded"] is True
    assert isinstance(event["body"], str)
    assert base64.b64decode(event["body"]) == payload


def test_a_request_authorizer_event_names_the_method_arn_and_has_no_body() -> None:
    event = build_authorizer_event(
        request(headers=(("Authorization", "Bearer k"),)), MATCH, request_id="req-1", time_epoch_ms=1_700_000_000_000
    )

    assert event["type"] == "REQUEST"
    assert event["methodArn"] == (
        "arn:aws:execute-api:us-east-1:000000000000:local/local/POST/workspaces/ws%201/things"
    )
    assert event["headers"]["Authorization"] == "Bearer k"
    assert event["pathParameters"] == {"workspaceId": "ws 1"}
    assert "body" not in event
    assert "authorizer" not in event["requestContext"]

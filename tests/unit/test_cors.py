"""CORS on the functions' responses: the console's origin, exactly, may read them; no other origin may."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from infra.system import CONSOLE_ORIGIN_ENV_VAR
from vmx.capacity.ledger import WindowUsage
from vmx.capacity.limits import CapacityPeriod
from vmx.http.app import EXPOSED_HEADERS, new_app, resolve
from vmx.http.limits import SECURITY_HEADERS
from vmx.http.rate_limits import rate_limit_headers
from vmx.settings import TenancySettings
from vmx.use_cases.refusals import RateLimits

CONSOLE = "https://d111111abcdef8.cloudfront.net"
CORS_HEADERS = {"Access-Control-Allow-Origin", "Vary", "Access-Control-Expose-Headers"}


@pytest.fixture(scope="module")
def app() -> APIGatewayRestResolver:
    app = new_app(Logger(service="cors-test"))

    @app.get("/things")
    def get_thing() -> Response[dict[str, str]]:
        return Response(200, content_types.APPLICATION_JSON, {"name": "thing"}, headers={"ETag": '"3"'})

    return app


def proxy_event(method: str = "GET", headers: dict[str, str] | None = None, body: str | None = None) -> dict[str, Any]:
    headers = headers or {}
    return {
        "resource": "/things",
        "path": "/things",
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"httpMethod": method, "path": "/prod/things", "resourcePath": "/things", "stage": "prod"},
        "body": body,
        "isBase64Encoded": False,
    }


def call(app: APIGatewayRestResolver, event: dict[str, Any], allowed_origin: str | None = CONSOLE) -> dict[str, Any]:
    return resolve(app, event, LambdaContext(), allowed_origin=allowed_origin)


def test_a_request_from_the_console_may_read_the_response(app: APIGatewayRestResolver) -> None:
    result = call(app, proxy_event(headers={"Origin": CONSOLE}))

    headers = result["multiValueHeaders"]
    assert headers["Access-Control-Allow-Origin"] == [CONSOLE]
    assert headers["Vary"] == ["Origin"]
    assert headers["Access-Control-Expose-Headers"] == [EXPOSED_HEADERS]
    # What Powertools built is left as it was, and nothing moves to the single-value headers.
    assert headers["ETag"] == ['"3"']
    assert headers["Content-Type"] == ["application/json"]
    assert "headers" not in result
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"name": "thing"}


def test_the_origin_header_is_found_whatever_its_case(app: APIGatewayRestResolver) -> None:
    result = call(app, proxy_event(headers={"origin": CONSOLE}))

    assert result["multiValueHeaders"]["Access-Control-Allow-Origin"] == [CONSOLE]


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://d111111abcdef8.cloudfront.net",
        "https://D111111ABCDEF8.cloudfront.net",
        CONSOLE + "/",
        CONSOLE + ":443",
        "https://d111111abcdef8.cloudfront.net.evil.example",
        "null",
    ],
)
def test_any_other_origin_gets_no_cors_headers(app: APIGatewayRestResolver, origin: str) -> None:
    result = call(app, proxy_event(headers={"Origin": origin}))

    assert not CORS_HEADERS & result["multiValueHeaders"].keys()
    assert result["statusCode"] == 200


def test_a_request_without_an_origin_gets_no_cors_headers(app: APIGatewayRestResolver) -> None:
    result = call(app, proxy_event())

    assert not CORS_HEADERS & result["multiValueHeaders"].keys()


def test_without_a_console_no_origin_may_read_responses(app: APIGatewayRestResolver) -> None:
    result = call(app, proxy_event(headers={"Origin": CONSOLE}), allowed_origin=None)

    assert not CORS_HEADERS & result["multiValueHeaders"].keys()


def test_the_console_may_read_a_request_refused_before_routing(app: APIGatewayRestResolver) -> None:
    event = proxy_event("GET", {"Origin": CONSOLE, "Content-Type": "text/plain"}, body="hello")

    result = call(app, event)

    assert result["statusCode"] == 415
    assert result["headers"] == {
        "Content-Type": "application/json",
        **SECURITY_HEADERS,
        "Access-Control-Allow-Origin": CONSOLE,
        "Vary": "Origin",
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
    }
    assert "multiValueHeaders" not in result


def test_a_refusal_to_another_origin_gets_no_cors_headers(app: APIGatewayRestResolver) -> None:
    event = proxy_event("GET", {"Origin": "https://evil.example", "Content-Type": "text/plain"}, body="hello")

    result = call(app, event)

    assert result["headers"] == {"Content-Type": "application/json", **SECURITY_HEADERS}


def test_the_console_may_read_every_header_the_api_sets_for_it() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    usage = WindowUsage(CapacityPeriod.MINUTE, 1, 10, 5, 100, now + timedelta(seconds=30))
    rate_limits = rate_limit_headers(RateLimits(requests=usage, tokens=usage, priority_class="batch"), now)

    exposed = {name.strip().lower() for name in EXPOSED_HEADERS.split(",")}
    assert {name.lower() for name in rate_limits} | {"etag", "retry-after", "x-amzn-requestid"} == exposed


ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "TENANCY_TABLE_NAME": "tenancy",
    "CONNECTIONS_TABLE_NAME": "connections",
    "EVENT_BUS_NAME": "events",
    "EVENT_OUTBOX_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/outbox",
}


@pytest.mark.parametrize("origin", [CONSOLE, "http://127.0.0.1:8400", "http://localhost:8400"])
def test_the_console_origin_setting_takes_an_origin(origin: str) -> None:
    settings = TenancySettings.from_environ({**ENVIRONMENT, CONSOLE_ORIGIN_ENV_VAR: origin})

    assert settings.console_origin == origin


def test_without_the_setting_no_origin_is_allowed() -> None:
    assert TenancySettings.from_environ(ENVIRONMENT).console_origin is None


@pytest.mark.parametrize(
    "origin",
    ["", "*", CONSOLE + "/", CONSOLE + "/index.html", "d111111abcdef8.cloudfront.net", "ftp://host", "https://Host"],
)
def test_the_console_origin_setting_refuses_what_is_not_an_origin_as_browsers_send_it(origin: str) -> None:
    with pytest.raises(ValidationError, match=CONSOLE_ORIGIN_ENV_VAR):
        TenancySettings.from_environ({**ENVIRONMENT, CONSOLE_ORIGIN_ENV_VAR: origin})

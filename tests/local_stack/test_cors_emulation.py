"""The local gateway's CORS, as the stack sets it up: API Gateway answers preflights itself and marks its
own errors with the console's origin; the functions mark theirs."""

from typing import Any

from infra.system import AUTHORIZER, FUNCTIONS, ROUTES
from local_stack.gateway import ApiGateway, HttpRequest, HttpResponse
from local_stack.lambda_runtime import LambdaRuntime

ORIGIN = "http://127.0.0.1:8080"
CONNECTION = "/api/v1/workspaces/w/environments/e/ai-connections/c"


def gateway(allowed_origin: str | None) -> tuple[ApiGateway, list[str]]:
    invoked: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        invoked.append(event.get("httpMethod", "authorizer"))
        return {"statusCode": 200, "body": "{}"}

    runtime = LambdaRuntime(FUNCTIONS, {function.name: handler for function in FUNCTIONS})
    return ApiGateway(ROUTES, runtime.invoke, AUTHORIZER.name, allowed_origin), invoked


def send(target: ApiGateway, method: str, path: str, *headers: tuple[str, str]) -> HttpResponse:
    return target.handle(HttpRequest(method, path, [("Origin", ORIGIN), *headers], b"", "127.0.0.1"))


def test_a_preflight_is_answered_without_the_authorizer_or_a_function() -> None:
    target, invoked = gateway(ORIGIN)

    response = send(target, "OPTIONS", CONNECTION, ("Access-Control-Request-Method", "PATCH"))

    assert response.status == 204
    assert dict(response.headers) == {
        "Access-Control-Allow-Origin": ORIGIN,
        "Vary": "Origin",
        "Access-Control-Allow-Methods": "GET,PATCH,DELETE",
        "Access-Control-Allow-Headers": "Authorization,Content-Type,If-Match",
        "Access-Control-Max-Age": "600",
    }
    assert invoked == []


def test_the_gateways_own_refusals_carry_the_origin() -> None:
    target, _ = gateway(ORIGIN)

    for response in (send(target, "GET", CONNECTION), send(target, "GET", "/nowhere")):
        assert response.status in (401, 404)
        assert ("Access-Control-Allow-Origin", ORIGIN) in response.headers


def test_without_an_allowed_origin_there_is_no_cors() -> None:
    target, _ = gateway(None)

    preflight = send(target, "OPTIONS", CONNECTION)
    refusal = send(target, "GET", CONNECTION)

    # no preflight method: OPTIONS is a method the path lacks, as the stack's MOCK ANY answers it
    assert preflight.status == 405
    assert not any(name.startswith("Access-Control") for name, _ in [*preflight.headers, *refusal.headers])

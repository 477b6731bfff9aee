"""The REST API: every route of system.ROUTES, the authorizer, the stage limits, JSON errors and the WAF."""

import json
from typing import Any

import pytest

from infra.system import AUTHORIZER, AUTHORIZER_CACHE_SECONDS, MAX_BODY_BYTES, ROUTES, Route
from tests.infra.synthesized import Synthesized
from tests.infra.test_console import console_origin
from tests.infra.test_console import rendered as rendered_origin


def only(resources: dict[str, Any]) -> dict[str, Any]:
    assert len(resources) == 1, list(resources)
    properties: dict[str, Any] = next(iter(resources.values()))["Properties"]
    return properties


def test_the_authorizer_checks_the_authorization_header_and_caches_its_answer(synthesized: Synthesized) -> None:
    authorizer = only(synthesized.of_type("AWS::ApiGateway::Authorizer"))

    assert authorizer["Type"] == "REQUEST"
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["AuthorizerResultTtlInSeconds"] == AUTHORIZER_CACHE_SECONDS
    assert synthesized.function_id(AUTHORIZER.name) in json.dumps(authorizer["AuthorizerUri"])


def test_the_api_has_exactly_the_routes_of_the_spec(synthesized: Synthesized) -> None:
    """Besides the CORS preflights (test_console.py) and the 405s of the methods a path lacks."""
    routes = {(method, path) for method, path in synthesized.routes if method not in ("OPTIONS", "ANY")}

    assert routes == {(route.method, route.path) for route in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_each_route_proxies_to_its_function_behind_the_authorizer(synthesized: Synthesized, route: Route) -> None:
    method = synthesized.routes[route.method, route.path]
    authorizer_id = next(iter(synthesized.of_type("AWS::ApiGateway::Authorizer")))

    uri_parts = method["Integration"]["Uri"]["Fn::Join"][1]
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert {"Fn::GetAtt": [synthesized.function_id(route.function), "Arn"]} in uri_parts
    if route.authorized:
        assert method["AuthorizationType"] == "CUSTOM"
        assert method["AuthorizerId"] == {"Ref": authorizer_id}
    else:
        assert method["AuthorizationType"] == "NONE"


def test_the_stage_throttles_traces_and_writes_json_access_logs(synthesized: Synthesized) -> None:
    stage = only(synthesized.of_type("AWS::ApiGateway::Stage"))
    access_logs_id = synthesized.logical_id(synthesized.stack.api.access_logs)

    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0
    assert settings["ThrottlingBurstLimit"] >= settings["ThrottlingRateLimit"]
    assert settings["MetricsEnabled"] is True
    assert settings["DataTraceEnabled"] is False
    assert stage["TracingEnabled"] is True
    assert {"Ref": access_logs_id} in stage["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    access_log_fields = json.loads(stage["AccessLogSetting"]["Format"])
    assert {"requestId", "ip", "httpMethod", "resourcePath", "status"} <= set(access_log_fields)


GATEWAY_ERRORS = {
    # response type: (status, code, OpenAI type); None keeps the status API Gateway chose
    "UNAUTHORIZED": ("401", "unauthorized", "authentication_error"),
    "ACCESS_DENIED": ("403", "forbidden", "permission_error"),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found", "invalid_request_error"),
    "THROTTLED": ("429", "throttled", "rate_limit_error"),
    "REQUEST_TOO_LARGE": ("400", "body_too_large", "invalid_request_error"),
    "DEFAULT_4XX": (None, "bad_request", "invalid_request_error"),
    "DEFAULT_5XX": (None, "internal_error", "api_error"),
}


def rendered(template: str, gateway_message: str) -> Any:
    """The body API Gateway would send, with its message placeholder filled in as it does."""
    return json.loads(template.replace("$context.error.messageString", json.dumps(gateway_message)))


def gateway_responses(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        response["Properties"]["ResponseType"]: response["Properties"]
        for response in synthesized.of_type("AWS::ApiGateway::GatewayResponse").values()
    }


def test_every_error_api_gateway_answers_itself_reads_as_our_shape_and_as_openais(synthesized: Synthesized) -> None:
    """One body per error for the whole API (API Gateway cannot choose by path): REST clients read code, message
    and details; OpenAI SDKs under the completions' base URL read message, type, param and code."""
    responses = gateway_responses(synthesized)

    assert set(responses) == set(GATEWAY_ERRORS)
    for response_type, (status, code, openai_type) in GATEWAY_ERRORS.items():
        response = responses[response_type]
        assert response.get("StatusCode") == status, response_type
        assert response["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
        assert response["ResponseParameters"]["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"
        assert response["ResponseParameters"]["gatewayresponse.header.Cache-Control"] == "'no-store'"
        template = response["ResponseTemplates"]["application/json"]
        if response_type != "MISSING_AUTHENTICATION_TOKEN":
            assert template == (
                '{"error":{"message":$context.error.messageString,'
                f'"type":"{openai_type}","param":null,"code":"{code}","details":[]}}}}'
            )
        body = rendered(template, "what API Gateway says")
        assert body == {
            "error": {
                "message": "what API Gateway says"
                if response_type != "MISSING_AUTHENTICATION_TOKEN"
                else "no such route",
                "type": openai_type,
                "param": None,
                "code": code,
                "details": [],
            }
        }


def test_an_unknown_path_is_a_json_404_rather_than_a_missing_token(synthesized: Synthesized) -> None:
    response = gateway_responses(synthesized)["MISSING_AUTHENTICATION_TOKEN"]

    assert response["ResponseTemplates"]["application/json"] == (
        '{"error":{"message":"no such route","type":"invalid_request_error","param":null,'
        '"code":"not_found","details":[]}}'
    )


@pytest.mark.parametrize("path", sorted({route.path for route in ROUTES}))
def test_a_method_a_path_lacks_is_a_405_naming_those_it_has_answered_by_api_gateway(
    synthesized: Synthesized, path: str
) -> None:
    methods = [route.method for route in ROUTES if route.path == path]
    method = synthesized.routes["ANY", path]

    # Given no function behind it and nothing to authorize
    assert method["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in method
    integration = method["Integration"]
    assert integration["Type"] == "MOCK"
    assert integration["PassthroughBehavior"] == "NEVER"
    assert integration["RequestTemplates"] == {"application/json": '{"statusCode": 405}'}
    # Then every other method gets the 405, in both error shapes, with Allow and the security headers
    (response,) = integration["IntegrationResponses"]
    assert response["StatusCode"] == "405"
    assert "SelectionPattern" not in response
    assert json.loads(response["ResponseTemplates"]["application/json"]) == {
        "error": {
            "message": f"this route answers only {', '.join(methods)}",
            "type": "invalid_request_error",
            "param": None,
            "code": "method_not_allowed",
            "details": [],
        }
    }
    headers = {
        name.removeprefix("method.response.header."): value for name, value in response["ResponseParameters"].items()
    }
    assert set(headers) == {
        "Allow",
        "X-Content-Type-Options",
        "Cache-Control",
        "Access-Control-Allow-Origin",
        "Vary",
    }
    assert headers["Allow"] == f"'{', '.join(methods)}'"
    assert headers["X-Content-Type-Options"] == "'nosniff'"
    assert headers["Cache-Control"] == "'no-store'"
    assert headers["Vary"] == "'Origin'"
    assert rendered_origin(headers["Access-Control-Allow-Origin"]) == f"'{console_origin(synthesized)}'"
    (method_response,) = method["MethodResponses"]
    assert method_response == {
        "StatusCode": "405",
        "ResponseParameters": dict.fromkeys(response["ResponseParameters"], True),
    }


def web_acl(synthesized: Synthesized) -> dict[str, Any]:
    return only(synthesized.of_type("AWS::WAFv2::WebACL"))


def rule(acl: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [rule for rule in acl["Rules"] if rule["Name"] == name]
    assert len(found) == 1, name
    return found[0]


def test_the_firewall_rejects_bodies_over_the_limit_with_a_json_400(synthesized: Synthesized) -> None:
    acl = web_acl(synthesized)
    body_rule = rule(acl, "BodyTooLarge")

    constraint = body_rule["Statement"]["SizeConstraintStatement"]
    assert constraint["ComparisonOperator"] == "GT"
    assert constraint["Size"] == MAX_BODY_BYTES
    assert constraint["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    # WAF must read at least MAX_BODY_BYTES, or a body just over its inspection limit would be blocked.
    inspection_limit = acl["AssociationConfig"]["RequestBody"]["API_GATEWAY"]["DefaultSizeInspectionLimit"]
    assert int(inspection_limit.removeprefix("KB_")) * 1024 >= MAX_BODY_BYTES
    response = body_rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 400
    body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert json.loads(body["Content"]) == {
        "error": {
            "message": f"request body is larger than {MAX_BODY_BYTES} bytes",
            "type": "invalid_request_error",
            "param": None,
            "code": "body_too_large",
            "details": [],
        }
    }


def test_the_firewall_limits_requests_per_ip(synthesized: Synthesized) -> None:
    acl = web_acl(synthesized)
    rate_rule = rule(acl, "RequestsPerIp")

    assert rate_rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    response = rate_rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = json.loads(acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]["Content"])
    assert body == {
        "error": {
            "message": "too many requests from this address",
            "type": "rate_limit_error",
            "param": None,
            "code": "throttled",
            "details": [],
        }
    }
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}


def test_the_firewall_guards_the_stage(synthesized: Synthesized) -> None:
    association = only(synthesized.of_type("AWS::WAFv2::WebACLAssociation"))
    stage_id = next(iter(synthesized.of_type("AWS::ApiGateway::Stage")))

    assert association["WebACLArn"] == {"Fn::GetAtt": [next(iter(synthesized.of_type("AWS::WAFv2::WebACL"))), "Arn"]}
    assert {"Ref": stage_id} in association["ResourceArn"]["Fn::Join"][1]

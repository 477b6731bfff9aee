"""The streamed route: API Gateway's STREAM transfer mode to InvokeWithResponseStream, for up to 15 minutes, on a
function whose runtime streams (vmx.runtime through the shared layer's wrapper), with everything else that
guards a route still in front of it."""

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from infra import system
from infra.system import COMPLETIONS, FUNCTIONS, ROUTES, Route
from tests.infra.synthesized import Synthesized

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STREAMED_ROUTES = [route for route in ROUTES if route.function in system.STREAMING_FUNCTIONS]


def test_the_completions_function_streams_and_nothing_else_does() -> None:
    assert {spec.name for spec in FUNCTIONS if spec.streams_responses} == {COMPLETIONS.name}
    # every route of the completions function: its handler answers through the streaming runtime (vmx.runtime)
    assert {route.path.rsplit("/", 1)[-1] for route in STREAMED_ROUTES} == {"completions", "models", "test"}


@pytest.mark.parametrize("route", STREAMED_ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_a_streamed_route_invokes_with_response_stream_for_up_to_15_minutes(
    synthesized: Synthesized, route: Route
) -> None:
    integration = synthesized.routes[route.method, route.path]["Integration"]

    assert integration["Type"] == "AWS_PROXY"
    assert integration["ResponseTransferMode"] == "STREAM"
    assert integration["TimeoutInMillis"] == 15 * 60 * 1000
    uri = json.dumps(integration["Uri"])
    assert "lambda:path/2021-11-15/functions/" in uri
    assert uri.endswith('"/response-streaming-invocations"]]}')


@pytest.mark.parametrize(
    "route",
    [route for route in ROUTES if route not in STREAMED_ROUTES],
    ids=lambda route: f"{route.method} {route.path}",
)
def test_every_other_route_stays_buffered(synthesized: Synthesized, route: Route) -> None:
    integration = synthesized.routes[route.method, route.path]["Integration"]

    assert integration.get("ResponseTransferMode", "BUFFERED") == "BUFFERED"
    assert "/invocations" in json.dumps(integration["Uri"])


@pytest.mark.parametrize("route", STREAMED_ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_a_streamed_route_is_still_behind_the_authorizer(synthesized: Synthesized, route: Route) -> None:
    method = synthesized.routes[route.method, route.path]

    assert method["AuthorizationType"] == "CUSTOM"
    assert method["AuthorizerId"] == {"Ref": next(iter(synthesized.of_type("AWS::ApiGateway::Authorizer")))}


def test_api_gateway_may_invoke_the_streaming_function_on_its_routes_only(synthesized: Synthesized) -> None:
    function_id = synthesized.function_id(COMPLETIONS.name)
    permissions = [
        properties
        for properties in (
            resource["Properties"] for resource in synthesized.of_type("AWS::Lambda::Permission").values()
        )
        if properties["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]

    # InvokeWithResponseStream is authorized by lambda:InvokeFunction
    assert {permission["Action"] for permission in permissions} == {"lambda:InvokeFunction"}
    assert {permission["Principal"] for permission in permissions} == {"apigateway.amazonaws.com"}
    source_arns = [json.dumps(permission["SourceArn"]) for permission in permissions]
    assert len(source_arns) == len(STREAMED_ROUTES)
    for route in STREAMED_ROUTES:
        assert any(f"/{route.method}{route.path.replace('{', '*').split('*')[0]}" in arn for arn in source_arns)


def test_the_streaming_function_runs_the_streaming_runtime_from_the_shared_layer(synthesized: Synthesized) -> None:
    properties: dict[str, Any] = synthesized.properties(synthesized.function_id(COMPLETIONS.name))
    wrapper = PROJECT_ROOT / "layers" / "shared" / "bin" / "vmx-streaming-runtime"

    assert properties["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bin/vmx-streaming-runtime"
    assert properties["Timeout"] == 900
    # the layer ships the file with its mode: Lambda can only start an executable wrapper
    assert wrapper.stat().st_mode & stat.S_IXUSR
    assert "-m vmx.runtime" in wrapper.read_text()


def test_the_waf_still_guards_the_stage_of_the_streamed_route(synthesized: Synthesized) -> None:
    (association,) = synthesized.of_type("AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = synthesized.of_type("AWS::ApiGateway::Stage")

    assert stage_id in json.dumps(association["Properties"]["ResourceArn"])

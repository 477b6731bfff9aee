"""The web console: private files behind CloudFront with security headers, and CORS for its origin alone."""

import json
import re
from graphlib import TopologicalSorter
from typing import Any

import pytest

from infra.api import GATEWAY_ERRORS
from infra.system import CONSOLE_CONFIG_FILE, CONSOLE_ORIGIN_ENV_VAR, FUNCTIONS, ROUTES, console_content_security_policy
from tests.infra.synthesized import Synthesized, as_list

API_FUNCTIONS = {route.function for route in ROUTES}
PATHS = sorted({route.path for route in ROUTES})


def rendered(value: Any) -> str:
    """A string CloudFormation builds, with each reference as `${LogicalId}` or `${LogicalId.Attribute}`."""
    match value:
        case str():
            return value
        case {"Ref": str(name)}:
            return f"${{{name}}}"
        case {"Fn::GetAtt": [str(name), str(attribute)]}:
            return f"${{{name}.{attribute}}}"
        case {"Fn::Join": ["", list(parts)]}:
            return "".join(rendered(part) for part in parts)
    raise AssertionError(f"not a string the tests can render: {value}")


def console_origin(synthesized: Synthesized) -> str:
    return f"https://${{{synthesized.logical_id(synthesized.stack.console.distribution)}.DomainName}}"


def distribution(synthesized: Synthesized) -> dict[str, Any]:
    config: dict[str, Any] = synthesized.properties(synthesized.logical_id(synthesized.stack.console.distribution))[
        "DistributionConfig"
    ]
    return config


def bucket_policy_statements(synthesized: Synthesized, bucket_id: str) -> list[dict[str, Any]]:
    (policy,) = [
        policy["Properties"]["PolicyDocument"]
        for policy in synthesized.of_type("AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def refuses_plain_http(statements: list[dict[str, Any]]) -> bool:
    return any(
        statement["Effect"] == "Deny"
        and statement["Action"] == "s3:*"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in statements
    )


def test_the_files_bucket_is_private_encrypted_and_refuses_plain_http(synthesized: Synthesized) -> None:
    bucket_id = synthesized.logical_id(synthesized.stack.console.bucket)
    bucket = synthesized.properties(bucket_id)

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert refuses_plain_http(bucket_policy_statements(synthesized, bucket_id))
    assert synthesized.resources[bucket_id]["DeletionPolicy"] == "Delete"


def test_only_the_distribution_reads_the_files_through_origin_access_control(synthesized: Synthesized) -> None:
    bucket_id = synthesized.logical_id(synthesized.stack.console.bucket)
    distribution_id = synthesized.logical_id(synthesized.stack.console.distribution)

    (origin,) = distribution(synthesized)["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    access_control_id = origin["OriginAccessControlId"]["Fn::GetAtt"][0]
    access_control = synthesized.properties(access_control_id)["OriginAccessControlConfig"]
    assert access_control["OriginAccessControlOriginType"] == "s3"
    assert access_control["SigningBehavior"] == "always"
    (reading,) = [
        statement
        for statement in bucket_policy_statements(synthesized, bucket_id)
        if statement.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert reading["Action"] == "s3:GetObject"
    source_arn = rendered(reading["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert source_arn.endswith(f":distribution/${{{distribution_id}}}")


def test_the_distribution_serves_index_html_over_https_only(synthesized: Synthesized) -> None:
    config = distribution(synthesized)

    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    assert config["HttpVersion"] == "http2and3"
    assert config["PriceClass"] == "PriceClass_100"


def test_every_response_carries_the_security_headers(synthesized: Synthesized) -> None:
    policy_id = synthesized.logical_id(synthesized.stack.console.response_headers)
    headers = synthesized.properties(policy_id)["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]

    assert distribution(synthesized)["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    assert headers["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 2 * 365 * 24 * 60 * 60,
        "IncludeSubdomains": True,
        "Override": True,
    }
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert headers["ContentSecurityPolicy"]["Override"] is True


def test_the_content_security_policy_lets_scripts_call_the_api_and_nothing_else(synthesized: Synthesized) -> None:
    policy_id = synthesized.logical_id(synthesized.stack.console.response_headers)
    headers = synthesized.properties(policy_id)["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    rest_api_id = synthesized.logical_id(synthesized.stack.api.rest_api)

    api_origin = f"https://${{{rest_api_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
    csp = rendered(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert csp == console_content_security_policy(api_origin)
    # The very origin the console's config points it at.
    api_url = rendered(synthesized.template.to_json()["Outputs"]["ApiUrl"]["Value"])
    assert api_url.startswith(api_origin + "/")


def test_the_distribution_logs_to_a_bucket_that_expires_them(synthesized: Synthesized) -> None:
    logs_id = synthesized.logical_id(synthesized.stack.console.logs)
    logs = synthesized.properties(logs_id)

    assert distribution(synthesized)["Logging"]["Bucket"] == {"Fn::GetAtt": [logs_id, "RegionalDomainName"]}
    # CloudFront standard logging writes with ACLs, which "bucket owner enforced" would refuse.
    assert logs["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    assert logs["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    (rule,) = logs["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] > 0
    assert refuses_plain_http(bucket_policy_statements(synthesized, logs_id))
    files = synthesized.properties(synthesized.logical_id(synthesized.stack.console.bucket))
    assert files["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}


def bucket_deployment(synthesized: Synthesized) -> dict[str, Any]:
    (deployment,) = synthesized.of_type("Custom::CDKBucketDeployment").values()
    properties: dict[str, Any] = deployment["Properties"]
    return properties


def test_each_deploy_copies_the_console_and_invalidates_the_distribution(synthesized: Synthesized) -> None:
    deployment = bucket_deployment(synthesized)

    assert deployment["DestinationBucketName"] == {"Ref": synthesized.logical_id(synthesized.stack.console.bucket)}
    assert deployment["DistributionId"] == {"Ref": synthesized.logical_id(synthesized.stack.console.distribution)}
    assert deployment["DistributionPaths"] == ["/*"]
    assert deployment["Prune"] is True
    # File names carry no content hash, so browsers must revalidate.
    assert deployment["SystemMetadata"] == {"cache-control": "no-cache"}
    console_asset, _ = deployment["SourceObjectKeys"]
    assert (synthesized.assembly_dir / f"asset.{console_asset.removesuffix('.zip')}" / "index.html").is_file()


def test_the_deployed_config_points_the_console_at_the_api(synthesized: Synthesized) -> None:
    deployment = bucket_deployment(synthesized)
    _, config_asset = deployment["SourceObjectKeys"]
    _, markers = deployment["SourceMarkers"]

    config_file = synthesized.assembly_dir / f"asset.{config_asset.removesuffix('.zip')}" / CONSOLE_CONFIG_FILE
    # CDK writes a marker in the file, for the deployment to replace with the API's URL as a JSON string.
    deployed = config_file.read_text()
    for marker, value in markers.items():
        deployed = deployed.replace(marker, rendered(value))
    api_url = rendered(synthesized.template.to_json()["Outputs"]["ApiUrl"]["Value"])
    assert json.loads(deployed) == {"apiUrl": api_url}


@pytest.mark.parametrize("path", PATHS)
def test_api_gateway_answers_each_routes_preflight_for_the_console_alone(synthesized: Synthesized, path: str) -> None:
    preflight = synthesized.routes["OPTIONS", path]

    assert preflight["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in preflight
    assert preflight["Integration"]["Type"] == "MOCK"
    (response,) = preflight["Integration"]["IntegrationResponses"]
    headers = {
        name.removeprefix("method.response.header."): rendered(value)
        for name, value in response["ResponseParameters"].items()
    }
    assert headers == {
        "Access-Control-Allow-Origin": f"'{console_origin(synthesized)}'",
        "Access-Control-Allow-Methods": "'{}'".format(",".join(r.method for r in ROUTES if r.path == path)),
        "Access-Control-Allow-Headers": "'Authorization,Content-Type,If-Match'",
        "Access-Control-Max-Age": "'600'",
        "Vary": "'Origin'",
    }


def test_only_route_resources_have_preflights(synthesized: Synthesized) -> None:
    assert {path for method, path in synthesized.routes if method == "OPTIONS"} == set(PATHS)


def test_the_console_can_read_the_errors_api_gateway_answers_itself(synthesized: Synthesized) -> None:
    responses = {
        response["Properties"]["ResponseType"]: response["Properties"]["ResponseParameters"]
        for response in synthesized.of_type("AWS::ApiGateway::GatewayResponse").values()
    }

    assert set(responses) == {error.response_type for error in GATEWAY_ERRORS}
    for parameters in responses.values():
        assert rendered(parameters["gatewayresponse.header.Access-Control-Allow-Origin"]) == (
            f"'{console_origin(synthesized)}'"
        )
        assert parameters["gatewayresponse.header.Vary"] == "'Origin'"


def test_only_the_functions_behind_routes_are_told_the_consoles_origin(synthesized: Synthesized) -> None:
    told = {}
    for spec in FUNCTIONS:
        variables = synthesized.properties(synthesized.function_id(spec.name))["Environment"]["Variables"]
        if CONSOLE_ORIGIN_ENV_VAR in variables:
            told[spec.name] = rendered(variables[CONSOLE_ORIGIN_ENV_VAR])

    assert told == {name: console_origin(synthesized) for name in API_FUNCTIONS}


def test_the_console_url_is_an_output(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]

    assert rendered(outputs["ConsoleUrl"]["Value"]) == console_origin(synthesized)


def references(value: Any) -> set[str]:
    match value:
        case {"Ref": str(name)}:
            return {name}
        case {"Fn::GetAtt": [str(name), _]}:
            return {name}
        case {"Fn::Sub": str(text)}:
            return {match.split(".")[0] for match in re.findall(r"\$\{([^}!]+)\}", text)}
        case dict():
            return set().union(*(references(item) for item in value.values()))
        case list():
            return set().union(*(references(item) for item in value))
    return set()


def test_the_console_and_the_api_refer_to_each_other_without_a_cycle(synthesized: Synthesized) -> None:
    """The CSP names the API and CORS names the console: CloudFormation refuses a template whose resources
    depend on each other in a circle, and synth does not check that."""
    resources = synthesized.resources
    graph = {
        logical_id: (references(resource) | set(as_list(resource.get("DependsOn", [])))) & resources.keys()
        for logical_id, resource in resources.items()
    }

    order = list(TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert len(order) == len(resources)

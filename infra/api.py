"""The REST API of system.ROUTES: authorizer, routes, stage limits, access logs, JSON errors, the firewall,
and CORS for one browser origin."""

import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import cast

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.standard_function import LOG_RETENTION
from infra.system import (
    AUTHORIZER_CACHE_SECONDS,
    CORS_ALLOW_HEADERS,
    CORS_MAX_AGE_SECONDS,
    MAX_BODY_BYTES,
    SECURITY_HEADERS,
    Route,
)
from vmx.http.gateway_errors import gateway_error_payload, method_not_allowed_message

AUTHORIZATION_HEADER = "Authorization"
# Whole-API steady rate and burst, in requests per second, before API Gateway answers 429.
THROTTLE_RATE_LIMIT = 100
THROTTLE_BURST_LIMIT = 200
# API Gateway's limit for a streamed response: a streaming integration may run this long.
STREAMING_INTEGRATION_TIMEOUT_SECONDS = 15 * 60
# Requests one client IP may send in five minutes before the firewall answers 429.
REQUESTS_PER_IP_PER_5_MINUTES = 2000
# API Gateway substitutes its own message here as a JSON string, quotes included.
GATEWAY_MESSAGE = "$context.error.messageString"
# WAF reads at most this much of a body; a larger body is "oversize" and can be matched as such.
WAF_BODY_INSPECTION_LIMITS = {16 * 1024: "KB_16", 32 * 1024: "KB_32", 48 * 1024: "KB_48", 64 * 1024: "KB_64"}
# What the 405 of a method no route defines says; the request template only picks its integration response.
METHOD_NOT_ALLOWED_REQUEST = '{"statusCode": 405}'
_MESSAGE_SLOT = "\x00message\x00"


def error_json(status: int, code: str, message_json: str) -> str:
    """The errors API Gateway and the firewall answer themselves (vmx.http.gateway_errors), with `message_json`
    already JSON so that API Gateway's placeholder can stand in for it."""
    body = json.dumps(gateway_error_payload(status, code, _MESSAGE_SLOT), separators=(",", ":"))
    return body.replace(json.dumps(_MESSAGE_SLOT), message_json)


@dataclass(frozen=True)
class GatewayError:
    """An error API Gateway answers by itself, before any function runs."""

    response_type: str
    code: str
    # None keeps the status API Gateway chose, for the families that cover several statuses.
    status: str | None = None
    message: str | None = None

    @property
    def body(self) -> str:
        family = 500 if self.response_type == "DEFAULT_5XX" else 400
        status = int(self.status) if self.status else family
        return error_json(status, self.code, json.dumps(self.message) if self.message else GATEWAY_MESSAGE)


GATEWAY_ERRORS = (
    GatewayError("UNAUTHORIZED", "unauthorized", "401"),
    GatewayError("ACCESS_DENIED", "forbidden", "403"),
    # What API Gateway answers for a path no route defines (a method a path lacks is a 405: _MethodNotAllowed).
    GatewayError("MISSING_AUTHENTICATION_TOKEN", "not_found", "404", "no such route"),
    GatewayError("THROTTLED", "throttled", "429"),
    # 400 like the firewall and the handlers; API Gateway's own limit (10 MB) is far above MAX_BODY_BYTES.
    GatewayError("REQUEST_TOO_LARGE", "body_too_large", "400"),
    GatewayError("DEFAULT_4XX", "bad_request"),
    GatewayError("DEFAULT_5XX", "internal_error"),
)


def method_not_allowed_headers(methods: Sequence[str], origin: str | None = None) -> dict[str, str]:
    """The headers of a 405, as API Gateway's static values (quoted)."""
    headers = {"Allow": ", ".join(methods), **SECURITY_HEADERS}
    if origin is not None:
        headers |= {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {f"method.response.header.{name}": f"'{value}'" for name, value in headers.items()}


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Sequence[Route],
        functions: Mapping[str, lambda_.IFunction],
        authorizer_function: lambda_.IFunction,
        streaming_functions: Set[str] = frozenset(),
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=Stack.of(self).stack_name,
            description="VM-X AI Connections",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # API Gateway writes access and execution logs only once the region has this account role.
            cloud_watch_role=True,
            # The role is a setting of the whole account and region; other APIs' logging may rely on it.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                throttling_rate_limit=THROTTLE_RATE_LIMIT,
                throttling_burst_limit=THROTTLE_BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Request bodies carry provider credentials: they must never reach a log.
                data_trace_enabled=False,
            ),
        )
        authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=authorizer_function,
            identity_sources=[apigw.IdentitySource.header(AUTHORIZATION_HEADER)],
            results_cache_ttl=Duration.seconds(AUTHORIZER_CACHE_SECONDS),
        )
        # Test invocations from the console would double each function's resource policy.
        integrations = {
            name: self._integration(functions[name], streams=name in streaming_functions)
            for name in dict.fromkeys(route.function for route in routes)
        }
        self._methods_by_path: dict[str, list[str]] = {}
        for route in routes:
            self._methods_by_path.setdefault(route.path, []).append(route.method)
            method = self.rest_api.root.resource_for_path(route.path).add_method(
                route.method,
                integrations[route.function],
                authorizer=authorizer if route.authorized else None,
                authorization_type=apigw.AuthorizationType.CUSTOM if route.authorized else apigw.AuthorizationType.NONE,
            )
            if not route.authorized:
                Validations.of(method).acknowledge(
                    Acknowledgment(
                        id="AwsSolutions-APIG4",
                        reason="A public route (the API's OpenAPI document): it reads nothing of any tenant, and the "
                        "firewall's per-address rate limit and the stage's throttling bound it like every route.",
                    ),
                )
        self._not_allowed = {
            path: self._method_not_allowed(path, methods) for path, methods in self._methods_by_path.items()
        }
        self.gateway_responses = [
            self.rest_api.add_gateway_response(
                error.response_type,
                type=apigw.ResponseType.of(error.response_type),
                status_code=error.status,
                response_headers={
                    "Content-Type": "'application/json'",
                    **{name: f"'{value}'" for name, value in SECURITY_HEADERS.items()},
                },
                templates={"application/json": error.body},
            )
            for error in GATEWAY_ERRORS
        ]
        ApiFirewall(self, "Firewall", stage=self.rest_api.deployment_stage)
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="Requests are validated in the handlers by Powertools with pydantic models, strictly: "
                "unknown fields are refused. API Gateway request models would be a second copy to drift.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Callers authenticate with workspace API keys, checked by the Lambda REQUEST "
                "authorizer against the tenancy table; the system has no Cognito users.",
            ),
        )
        cloud_watch_role = self.rest_api.node.find_child("CloudWatchRole")
        Validations.of(cloud_watch_role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="API Gateway's account-wide logging role: the AWS-managed policy is the documented "
                "one, it allows writing only to CloudWatch Logs, and API Gateway names the log groups.",
            )
        )

    def _method_not_allowed(self, path: str, methods: Sequence[str]) -> apigw.Method:
        """Any method `path` does not define answers 405 naming those it does (API Gateway alone would say
        MISSING_AUTHENTICATION_TOKEN, as for a path that does not exist): a MOCK, reaching no function or data.
        A request body of another type than JSON is a 415 (UNSUPPORTED_MEDIA_TYPE, a DEFAULT_4XX) instead."""
        headers = method_not_allowed_headers(methods)
        body = json.dumps(
            gateway_error_payload(405, "method_not_allowed", method_not_allowed_message(list(methods))),
            separators=(",", ":"),
        )
        method = self.rest_api.root.resource_for_path(path).add_method(
            "ANY",
            apigw.MockIntegration(
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={"application/json": METHOD_NOT_ALLOWED_REQUEST},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="405", response_parameters=headers, response_templates={"application/json": body}
                    )
                ],
            ),
            method_responses=[
                apigw.MethodResponse(status_code="405", response_parameters=dict.fromkeys(headers, True))
            ],
            authorization_type=apigw.AuthorizationType.NONE,
        )
        Validations.of(method).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="A wrong method's 405: API Gateway answers it itself (MOCK) with a fixed JSON body and "
                "the Allow header, reaching no function or data, so there is nothing to authorize.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="A wrong method's 405 answered by API Gateway itself (MOCK), reaching no function or data: "
                "there is no caller to authenticate, with Cognito or otherwise.",
            ),
        )
        return method

    @staticmethod
    def _integration(function: lambda_.IFunction, streams: bool) -> apigw.LambdaIntegration:
        """A streaming function is invoked with InvokeWithResponseStream (the STREAM transfer mode): API Gateway
        sends its prelude as the status and headers and each piece as it comes, for up to 15 minutes."""
        if not streams:
            return apigw.LambdaIntegration(function, allow_test_invoke=False)
        return apigw.LambdaIntegration(
            function,
            allow_test_invoke=False,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.seconds(STREAMING_INTEGRATION_TIMEOUT_SECONDS),
        )

    @property
    def origin(self) -> str:
        """The API's own origin: where browsers send requests, and so what a page's CSP must allow."""
        stack = Stack.of(self)
        return f"https://{self.rest_api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}"

    def allow_browser_origin(self, origin: str) -> None:
        """Lets pages from `origin`, and no other, call the API: API Gateway answers their preflights and
        marks its own errors readable to them; the functions mark theirs (system.CONSOLE_ORIGIN_ENV_VAR)."""
        for path, methods in self._methods_by_path.items():
            preflight = self.rest_api.root.resource_for_path(path).add_cors_preflight(
                allow_origins=[origin],
                allow_methods=methods,
                allow_headers=list(CORS_ALLOW_HEADERS),
                max_age=Duration.seconds(CORS_MAX_AGE_SECONDS),
            )
            Validations.of(preflight).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG4",
                    reason="A CORS preflight: browsers send OPTIONS without credentials, and API Gateway "
                    "answers it itself (MOCK) with headers only, reaching no function or data.",
                ),
            )
        for path, method in self._not_allowed.items():
            # a MOCK's responses cannot change once made: the template's own are replaced with the origin's
            headers = method_not_allowed_headers(self._methods_by_path[path], origin)
            cfn_method = cast(apigw.CfnMethod, method.node.default_child)
            cfn_method.add_property_override("Integration.IntegrationResponses.0.ResponseParameters", headers)
            cfn_method.add_property_override("MethodResponses.0.ResponseParameters", dict.fromkeys(headers, True))
        for response in self.gateway_responses:
            resource = cast(apigw.CfnGatewayResponse, response.node.default_child)
            resource.response_parameters = {
                **cast(Mapping[str, str], resource.response_parameters),
                "gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'",
                "gatewayresponse.header.Vary": "'Origin'",
            }


class ApiFirewall(Construct):
    """A regional WAF ACL on the stage: rejects bodies over MAX_BODY_BYTES and floods from one IP."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigw.Stage) -> None:
        super().__init__(scope, construct_id)
        inspection_limit = min((size for size in WAF_BODY_INSPECTION_LIMITS if size >= MAX_BODY_BYTES), default=None)
        if inspection_limit is None:
            raise ValueError(f"WAF cannot inspect a body of {MAX_BODY_BYTES} bytes; the most is 64 KiB")
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=self._visibility("AllRequests"),
            association_config=wafv2.CfnWebACL.AssociationConfigProperty(
                request_body={
                    "API_GATEWAY": wafv2.CfnWebACL.RequestBodyAssociatedResourceTypeConfigProperty(
                        default_size_inspection_limit=WAF_BODY_INSPECTION_LIMITS[inspection_limit]
                    )
                }
            ),
            custom_response_bodies={
                "bodyTooLarge": wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    content=error_json(
                        400, "body_too_large", json.dumps(f"request body is larger than {MAX_BODY_BYTES} bytes")
                    ),
                ),
                "throttled": wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    content=error_json(429, "throttled", json.dumps("too many requests from this address")),
                ),
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="BodyTooLarge",
                    priority=0,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                            # A body beyond the inspection limit is larger than MAX_BODY_BYTES as well.
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                            ),
                            comparison_operator="GT",
                            size=MAX_BODY_BYTES,
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                        )
                    ),
                    action=self._block(400, "bodyTooLarge"),
                    visibility_config=self._visibility("BodyTooLarge"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="RequestsPerIp",
                    priority=1,
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=REQUESTS_PER_IP_PER_5_MINUTES,
                            evaluation_window_sec=300,
                            aggregate_key_type="IP",
                        )
                    ),
                    action=self._block(429, "throttled"),
                    visibility_config=self._visibility("RequestsPerIp"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "StageAssociation", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )

    @staticmethod
    def _block(status: int, body_key: str) -> wafv2.CfnWebACL.RuleActionProperty:
        return wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=status, custom_response_body_key=body_key
                )
            )
        )

    @staticmethod
    def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
        )

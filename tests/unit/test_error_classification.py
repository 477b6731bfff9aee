"""Every exception an API function can meet is classified once (status, code, message, details, headers, and how
it is logged), then answered in the REST routes' shape or the OpenAI routes' from that one classification."""

import importlib
import io
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx.capacity.ledger import CapacityExceeded, WindowUsage
from vmx.capacity.limits import CapacityPeriod
from vmx.completions.calls import ProviderError
from vmx.credentials.errors import CredentialsUnavailable, CredentialsUnreadable
from vmx.errors import (
    BodyTooLarge,
    Conflict,
    DomainError,
    ErrorDetail,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
)
from vmx.http.app import new_app, resolve
from vmx.http.error_shapes import ClassifiedError, openai_error_body, rest_error_body
from vmx.http.errors import classify, route_not_found
from vmx.http.gateway_errors import gateway_error_payload
from vmx.http.openai_errors import late_error_body
from vmx.storage.errors import StorageUnavailable
from vmx.use_cases.refusals import OverCapacity, ProviderFailure, RateLimits

NOW = datetime(2025, 3, 14, 12, 30, 15, tzinfo=UTC)
# What an exception nobody expected may hold (a key, a prompt): it must reach neither a body nor a log.
SECRET = "sk-CANARY-" + uuid.uuid4().hex
WINDOW = WindowUsage(CapacityPeriod.MINUTE, 5, 400, 5, 1000, NOW + timedelta(seconds=45))
OUR_LIMITS = {
    "x-ratelimit-limit-requests": "5",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "45s",
    "x-ratelimit-limit-tokens": "1000",
    "x-ratelimit-remaining-tokens": "600",
    "x-ratelimit-reset-tokens": "45s",
}
# A window that never resets: its headers do not depend on the clock of the app that answers.
LIFETIME = WindowUsage(CapacityPeriod.LIFETIME, 5, 400, 5, 1000, None)
LIFETIME_LIMITS = {name: value for name, value in OUR_LIMITS.items() if "-reset-" not in name}
DESCRIBED = {"error_type", "raised_at", "caused_by"}


def raised(error: Exception) -> Exception:
    """`error` as it is met: raised, with a traceback and a cause that quotes the secret too."""
    try:
        try:
            raise ValueError(SECRET)
        except ValueError as cause:
            raise error from cause
    except Exception as met:  # noqa: BLE001 - the test keeps what was raised
        return met


def over_capacity() -> OverCapacity:
    exceeded = CapacityExceeded(CapacityPeriod.MINUTE, "requests", 5, 45, NOW + timedelta(seconds=45))
    return OverCapacity("prod", exceeded, RateLimits(WINDOW, WINDOW), tokens=10, refused_at=NOW)


def invalid_name() -> RequestValidationError:
    # pydantic's own error keeps the input: the answer and the log must not
    return RequestValidationError(
        [
            {
                "type": "string_too_long",
                "loc": ("body", "name"),
                "msg": "String should have at most 3 characters",
                "input": SECRET,
                "ctx": {"max_length": 3},
            },
            {"type": "missing", "loc": ("query", "limit"), "msg": "Field required", "input": None},
        ]
    )


@dataclass(frozen=True)
class Case:
    error: Callable[[], Exception]
    status: int
    code: str
    message: str
    openai_type: str
    details: tuple[ErrorDetail, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    level: str = "INFO"
    log_message: str = "request refused"
    # None: the exception's type, frames and causes' types, and nothing of its text (vmx.failures.described)
    log_fields: dict[str, object] | None = None


NAME_TOO_LONG = ErrorDetail(field="name", message="String should have at most 3 characters", type="string_too_long")
LIMIT_MISSING = ErrorDetail(field="limit", message="Field required", type="missing")
NAME_TAKEN = ErrorDetail(field="name", message="is taken")

CASES = {
    "invalid input": Case(
        lambda: InvalidInput("name: is taken", [NAME_TAKEN]),
        400,
        "invalid_request",
        "name: is taken",
        "invalid_request_error",
        (NAME_TAKEN,),
        log_fields={"error_code": "invalid_request", "error_message": "name: is taken", "fields": ["name"]},
    ),
    "domain refusal with its own code": Case(
        lambda: NotFound("model 'prod/x' not found", code="model_not_found"),
        404,
        "model_not_found",
        "model 'prod/x' not found",
        "invalid_request_error",
        log_fields={"error_code": "model_not_found", "error_message": "model 'prod/x' not found"},
    ),
    "over capacity": Case(
        over_capacity,
        429,
        "rate_limit_exceeded",
        "AI connection 'prod' reached its per-minute limit of 5 requests",
        "rate_limit_error",
        headers={**OUR_LIMITS, "Retry-After": "45"},
        log_fields={
            "error_code": "rate_limit_exceeded",
            "error_message": "AI connection 'prod' reached its per-minute limit of 5 requests",
        },
    ),
    "request validation": Case(
        invalid_name,
        400,
        "invalid_request",
        "name: String should have at most 3 characters (and 1 more problems)",
        "invalid_request_error",
        (NAME_TOO_LONG, LIMIT_MISSING),
        log_fields={"error_code": "invalid_request", "fields": ["name", "limit"]},
    ),
    "provider 429 with its own limits": Case(
        lambda: ProviderFailure(
            ProviderError(
                429,
                "provider_rate_limited",
                "OpenAI is rate-limiting this AI connection",
                retry_after="7",
                rate_limit_headers={"x-ratelimit-remaining-requests": "0", "retry-after": "7"},
            ),
            RateLimits(WINDOW, WINDOW),
        ),
        429,
        "provider_rate_limited",
        "OpenAI is rate-limiting this AI connection",
        "rate_limit_error",
        headers={"x-ratelimit-remaining-requests": "0", "Retry-After": "7"},
        log_message="provider call failed",
        log_fields={"status": 429, "error_code": "provider_rate_limited"},
    ),
    "provider failure with the connection's limits": Case(
        lambda: ProviderFailure(
            ProviderError(502, "provider_error", "OpenAI failed (HTTP 500)"), RateLimits(LIFETIME, LIFETIME)
        ),
        502,
        "provider_error",
        "OpenAI failed (HTTP 500)",
        "api_error",
        headers=LIFETIME_LIMITS,
        log_message="provider call failed",
        log_fields={"status": 502, "error_code": "provider_error"},
    ),
    "provider failure mid-stream": Case(
        lambda: ProviderError(502, "provider_stream_interrupted", "OpenAI closed the stream before its end"),
        502,
        "provider_stream_interrupted",
        "OpenAI closed the stream before its end",
        "api_error",
        log_message="provider call failed",
        log_fields={"status": 502, "error_code": "provider_stream_interrupted"},
    ),
    "storage unavailable": Case(
        lambda: raised(StorageUnavailable(f"DynamoDB request failed ({SECRET})")),
        503,
        "unavailable",
        "a backing service is unavailable; retry shortly",
        "api_error",
        level="ERROR",
        log_message="dependency unavailable",
    ),
    "key service unavailable": Case(
        lambda: raised(CredentialsUnavailable(SECRET)),
        503,
        "unavailable",
        "a backing service is unavailable; retry shortly",
        "api_error",
        level="ERROR",
        log_message="dependency unavailable",
    ),
    "credentials unreadable": Case(
        lambda: raised(CredentialsUnreadable(SECRET)),
        502,
        "credentials_unreadable",
        "the AI connection's stored credentials cannot be read; set them again with a PATCH",
        "api_error",
        level="ERROR",
        log_message="stored credentials could not be opened",
    ),
    "anything else": Case(
        lambda: raised(RuntimeError(f"Invalid header value b'Bearer {SECRET}'")),
        500,
        "internal_error",
        "internal error",
        "api_error",
        level="ERROR",
        log_message="unexpected error",
    ),
}


def fixed_clock() -> datetime:
    return NOW


@pytest.mark.parametrize("name", CASES)
def test_every_kind_of_exception_has_one_classification_for_both_shapes(name: str) -> None:
    # Given an exception of this kind
    case = CASES[name]
    error = case.error()

    # When it is classified
    classified = classify(error, fixed_clock)

    # Then it has the status, code, message, details, headers and log line of its kind
    assert (classified.status, classified.code, classified.message) == (case.status, case.code, case.message)
    assert (classified.details, dict(classified.headers)) == (case.details, case.headers)
    assert (logging.getLevelName(classified.log_level), classified.log_message) == (case.level, case.log_message)
    if case.log_fields is None:
        assert classified.log_fields.keys() == DESCRIBED
        assert classified.log_fields["error_type"] == type(error).__name__
    else:
        assert classified.log_fields == case.log_fields
    assert SECRET not in repr(classified)


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (InvalidInput, 400),
        (BodyTooLarge, 400),
        (UnsupportedMediaType, 415),
        (Unauthenticated, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (Conflict, 409),
        (PreconditionFailed, 412),
        (TooManyRequests, 429),
    ],
)
def test_each_domain_refusal_has_its_status_and_code_and_is_logged_at_info(
    refusal: type[DomainError], status: int
) -> None:
    classified = classify(refusal("refused"))

    assert (classified.status, classified.code, classified.message) == (status, refusal.code, "refused")
    assert (classified.log_level, classified.log_message) == (logging.INFO, "request refused")


def test_a_request_no_route_matches_is_not_found_in_either_shape() -> None:
    classified = route_not_found("GET", "/api/v1/nowhere")

    assert (classified.status, classified.code, classified.message) == (
        404,
        "not_found",
        "no route for GET /api/v1/nowhere",
    )
    assert (classified.log_level, dict(classified.log_fields)) == (logging.INFO, {"error_code": "not_found"})


def test_the_rest_shape_has_the_code_the_message_and_every_detail() -> None:
    classified = classify(CASES["request validation"].error())

    assert rest_error_body(classified) == {
        "error": {
            "code": "invalid_request",
            "message": "name: String should have at most 3 characters (and 1 more problems)",
            "details": [
                {"field": "name", "message": "String should have at most 3 characters", "type": "string_too_long"},
                {"field": "limit", "message": "Field required", "type": "missing"},
            ],
        }
    }


def test_the_openai_shape_names_the_first_details_field_as_its_param_and_its_type_by_status() -> None:
    classified = classify(CASES["request validation"].error())

    assert openai_error_body(classified) == {
        "error": {
            "message": "name: String should have at most 3 characters (and 1 more problems)",
            "type": "invalid_request_error",
            "param": "name",
            "code": "invalid_request",
        }
    }


def test_a_gateways_own_error_reads_as_both_shapes() -> None:
    payload = gateway_error_payload(403, "forbidden", "User is not authorized to access this resource")
    classified = ClassifiedError(403, "forbidden", "User is not authorized to access this resource")

    assert payload["error"].items() >= rest_error_body(classified)["error"].items()
    assert payload["error"].items() >= openai_error_body(classified)["error"].items()
    assert list(payload["error"]) == ["message", "type", "param", "code", "details"]


# A route of each shape: the OpenAI routes under an environment's base URL, and any other
ROUTES = {"rest": "/things", "openai": "/api/v1/workspaces/ws-1/environments/env-1/chat/completions"}


@dataclass
class Answered:
    status: int
    headers: dict[str, list[str]]
    body: dict[str, Any]
    logged: list[dict[str, Any]]
    text: str


class Function:
    """An API function's app with one route, whose errors have that route's shape, and the log lines it wrote."""

    def __init__(self, route: str):
        self.output = io.StringIO()
        logger = Logger(service=f"errors-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(self.output))
        self.app = new_app(logger)
        self.route = route
        self.raising: Exception = RuntimeError("nothing to raise yet")

        @self.app.post(route)
        def create_thing() -> dict[str, str]:
            raise self.raising

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None) -> Answered:
        headers = {"Content-Type": "application/json", **(headers or {})}
        event = {
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "requestContext": {"httpMethod": method, "path": path, "resourcePath": path, "stage": "prod"},
            "body": body,
            "isBase64Encoded": False,
        }
        self.output.seek(0)
        self.output.truncate()
        result = resolve(self.app, event, LambdaContext())
        lines = self.output.getvalue()
        # a refusal before routing keeps its headers single-valued, a route's answer multi-valued (vmx.http.app)
        single = {name: [value] for name, value in (result.get("headers") or {}).items()}
        return Answered(
            result["statusCode"],
            {**single, **(result.get("multiValueHeaders") or {})},
            json.loads(result["body"]),
            [json.loads(line) for line in lines.splitlines()],
            lines + result["body"],
        )


@pytest.fixture(scope="module")
def functions() -> dict[str, Function]:
    return {shape: Function(route) for shape, route in ROUTES.items()}


def expected_body(shape: str, case: Case) -> dict[str, Any]:
    return body_of(shape, case.code, case.message, case.openai_type, case.details)


def body_of(
    shape: str, code: str, message: str, openai_type: str, details: tuple[ErrorDetail, ...] = ()
) -> dict[str, Any]:
    if shape == "rest":
        return {"error": {"code": code, "message": message, "details": [detail.model_dump() for detail in details]}}
    param = details[0].field if details else None
    return {"error": {"message": message, "type": openai_type, "param": param, "code": code}}


@pytest.mark.parametrize("shape", ROUTES)
@pytest.mark.parametrize("name", CASES)
def test_each_shape_answers_every_exception_from_its_classification_and_logs_it_alike(
    functions: dict[str, Function], shape: str, name: str
) -> None:
    # Given a route that raises an exception of this kind
    case = CASES[name]
    function = functions[shape]
    function.raising = case.error()

    # When it is called
    answered = function.call("POST", function.route, body="{}")

    # Then the answer has the classification's status, headers and body in this shape
    assert answered.status == case.status
    assert {name: answered.headers[name] for name in case.headers} == {k: [v] for k, v in case.headers.items()}
    assert answered.body == expected_body(shape, case)
    # and one log line, at the classification's level, with its fields
    [line] = answered.logged
    assert (line["level"], line["message"]) == (case.level, case.log_message)
    if case.log_fields is None:
        assert line.keys() >= DESCRIBED
    else:
        assert {key: line[key] for key in case.log_fields} == case.log_fields
    # and nothing of the exception's text, its cause's or the refused input, in either
    assert SECRET not in answered.text


@pytest.mark.parametrize("shape", ROUTES)
def test_a_request_no_route_matches_is_answered_and_logged_in_each_shape(
    functions: dict[str, Function], shape: str
) -> None:
    # only POST is routed there
    path = functions[shape].route
    answered = functions[shape].call("GET", path)

    expected = body_of(shape, "not_found", f"no route for GET {path}", "invalid_request_error")
    assert (answered.status, answered.body) == (404, expected)
    assert [(line["level"], line["message"], line["error_code"]) for line in answered.logged] == [
        ("INFO", "request refused", "not_found")
    ]


@pytest.mark.parametrize("shape", ROUTES)
def test_a_body_refused_before_routing_is_answered_and_logged_by_the_apps_own_handlers(
    functions: dict[str, Function], shape: str
) -> None:
    answered = functions[shape].call("POST", functions[shape].route, {"Content-Type": "text/plain"}, body=SECRET)

    message = "request bodies must be JSON (Content-Type: application/json), not text/plain"
    expected = body_of(shape, "unsupported_media_type", message, "invalid_request_error")
    assert (answered.status, answered.body) == (415, expected)
    assert answered.headers["Content-Type"] == ["application/json"]
    assert [(line["level"], line["message"], line["error_code"]) for line in answered.logged] == [
        ("INFO", "request refused", "unsupported_media_type")
    ]
    assert SECRET not in answered.text


@pytest.mark.parametrize("name", CASES)
def test_a_failure_after_the_status_went_out_is_told_in_openais_body_and_logged_as_before_it(name: str) -> None:
    case = CASES[name]
    output = io.StringIO()
    logger = Logger(service=f"late-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(output))

    body = late_error_body(case.error(), logger, "stream")

    assert body == expected_body("openai", case)
    [line] = [json.loads(text) for text in output.getvalue().splitlines()]
    assert (line["level"], line["message"], line["stage"]) == (case.level, case.log_message, "stream")
    assert SECRET not in output.getvalue() + json.dumps(body)


@pytest.mark.parametrize("function", ["completions", "connections", "tenancy"])
def test_every_api_function_registers_the_one_classification_for_every_exception(function: str) -> None:
    app: APIGatewayRestResolver = importlib.import_module(f"functions.{function}.handler").app

    assert set(app.exception_handler_manager.get_registered_handlers()) == {Exception, NotFoundError}

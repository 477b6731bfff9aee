"""What every API function shares: the resolver with validation and error mapping, the checks API
Gateway's WAF makes in AWS (repeated here so the local stack and tests behave the same), CORS for the
console's origin, the caller's principal and ETags."""

import base64
import json
import re
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx.access.context import principal_from_context
from vmx.access.policy import Principal
from vmx.errors import BodyTooLarge, DomainError, ErrorDetail, InvalidInput, PreconditionFailed, UnsupportedMediaType
from vmx.http.errors import REQUEST_PATH, register_error_handlers
from vmx.http.limits import MAX_BODY_BYTES, SECURITY_HEADERS
from vmx.http.query import refuse_unknown_query_parameters

PageSize = Annotated[int, Query(ge=1, le=100, description="Page size.")]
NextToken = Annotated[str | None, Query(alias="nextToken", max_length=4096, description="From the previous page.")]

_ETAG = re.compile(r'^\s*(W/)?"(\d{1,18})"\s*$')
# The response headers the console reads: a cross-origin script sees no others. API Gateway adds the request ID.
EXPOSED_HEADERS = ", ".join(
    (
        "ETag",
        "Retry-After",
        "x-amzn-RequestId",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "x-vmx-priority-class",
    )
)


def new_app(logger: Logger) -> APIGatewayRestResolver:
    """The resolver of one API function; its errors are answered in their route's shape (vmx.http.error_shapes)."""
    app = APIGatewayRestResolver(
        enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR
    )
    register_error_handlers(app, logger)
    app.use([refuse_unknown_query_parameters])
    return app


def resolve(
    app: APIGatewayRestResolver,
    event: dict[str, Any],
    context: LambdaContext,
    allowed_origin: str | None = None,
) -> dict[str, Any]:
    """Checks what API Gateway's firewall checks in AWS, then routes. A refusal is answered by the app's own error
    handlers, as a route's would be; a request from `allowed_origin` gets the CORS headers that let its page read
    the answer."""
    # what the error handlers answer in the shape of: the resolver's current event is not this one until it routes
    app.append_context(**{REQUEST_PATH: event.get("path") or ""})
    try:
        _check_body(event)
    except DomainError as error:
        handler = app.exception_handler_manager.lookup_exception_handler(type(error))
        if handler is None:
            raise
        refusal: Response[Any] = handler(error)
        app.clear_context()
        result = {
            "statusCode": refusal.status_code,
            "headers": dict(refusal.headers),
            "body": json.dumps(refusal.body),
            "isBase64Encoded": False,
        }
    else:
        result = app.resolve(event, context)
    _add_missing_headers(result, SECURITY_HEADERS)
    if allowed_origin is not None and _origin(event) == allowed_origin:
        _add_headers(
            result,
            {
                "Access-Control-Allow-Origin": allowed_origin,
                "Vary": "Origin",
                "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            },
        )
    return result


def current_principal(app: APIGatewayRestResolver) -> Principal:
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer")
    return principal_from_context(context)


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_version(app: APIGatewayRestResolver) -> int | None:
    """The version a conditional request expects; None when unconditional (no header or `*`)."""
    header = app.current_event.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header)
    if match is None:
        message = 'must be an ETag from a previous response, such as "3", or *'
        raise InvalidInput(f"If-Match {message}", [ErrorDetail(field="header.If-Match", message=message)])
    if match.group(1):
        # If-Match compares strongly (RFC 9110): a weak ETag never matches.
        raise PreconditionFailed("If-Match with a weak ETag never matches; send the ETag as it was returned")
    return int(match.group(2))


def _origin(event: dict[str, Any]) -> str | None:
    return next((value for name, value in (event.get("headers") or {}).items() if name.lower() == "origin"), None)


def _add_missing_headers(result: dict[str, Any], headers: dict[str, str]) -> None:
    """Adds those of `headers` that the response does not set itself."""
    present = {name.lower() for name in (*(result.get("multiValueHeaders") or {}), *(result.get("headers") or {}))}
    _add_headers(result, {name: value for name, value in headers.items() if name.lower() not in present})


def _add_headers(result: dict[str, Any], headers: dict[str, str]) -> None:
    """Adds `headers` where the response keeps its own: `multiValueHeaders` in Powertools' REST responses,
    `headers` in a refusal."""
    if "multiValueHeaders" in result:
        for name, value in headers.items():
            result["multiValueHeaders"].setdefault(name, []).append(value)
    else:
        result.setdefault("headers", {}).update(headers)


def _check_body(event: dict[str, Any]) -> None:
    """Refuses a body the routes cannot read, and names a JSON one's media type as the resolver expects it."""
    body = event.get("body")
    if not body:
        return
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {key.lower(): (key, value) for key, value in (event.get("headers") or {}).items()}
    encoding = headers.get("content-encoding", ("", "identity"))[1].strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(f"request bodies are read as sent: Content-Encoding {encoding[:64]} is not decoded")
    name, value = headers.get("content-type", ("Content-Type", ""))
    # media types are case-insensitive (RFC 9110); application/json and any +json type are JSON
    media_type = value.split(";")[0].strip().lower()
    if not media_type:
        raise UnsupportedMediaType("a request body needs Content-Type: application/json")
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"request bodies must be JSON (Content-Type: application/json), not {media_type[:64]}"
        )
    # Powertools' resolver parses a body only under the exact type
    event["headers"][name] = "application/json"
    if event.get("multiValueHeaders") and name in event["multiValueHeaders"]:
        event["multiValueHeaders"][name] = ["application/json"]
    try:
        json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad_body("is not UTF-8 text", "invalid_encoding") from None
    except RecursionError:
        raise _bad_body("nests too deeply", "too_deep") from None
    except json.JSONDecodeError:
        pass  # malformed JSON: the resolver reports where
    except ValueError:
        # Python refuses to read an integer of more than 4,300 digits
        raise _bad_body("holds a number too long to read (more than 4,300 digits)", "number_too_long") from None


def _bad_body(problem: str, error_type: str) -> InvalidInput:
    return InvalidInput(f"body: {problem}", [ErrorDetail(field="body", message=problem, type=error_type)])

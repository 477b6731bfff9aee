"""Every exception an API function can meet, classified once (status, code, message, details, headers, and how it
is logged), and the one registration of the handlers that answer it. The REST functions and the completions
function register the same handlers; each renders the classification in its own shape (vmx.http.error_shapes).
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from vmx.clock import Clock, utc_now
from vmx.completions.failures import RETRY_HEADERS
from vmx.completions.provider_error import ProviderError
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
from vmx.failures import described
from vmx.http.error_shapes import ClassifiedError, error_body
from vmx.http.rate_limits import PRIORITY_CLASS_HEADER, rate_limit_headers
from vmx.storage.errors import StorageUnavailable
from vmx.use_cases.refusals import OverCapacity, ProviderFailure, RateLimits
from vmx.validation import error_details, summary

STATUS: dict[type[DomainError], HTTPStatus] = {
    InvalidInput: HTTPStatus.BAD_REQUEST,
    BodyTooLarge: HTTPStatus.BAD_REQUEST,
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    Unauthenticated: HTTPStatus.UNAUTHORIZED,
    Forbidden: HTTPStatus.FORBIDDEN,
    NotFound: HTTPStatus.NOT_FOUND,
    Conflict: HTTPStatus.CONFLICT,
    PreconditionFailed: HTTPStatus.PRECONDITION_FAILED,
    TooManyRequests: HTTPStatus.TOO_MANY_REQUESTS,
}

UNAVAILABLE = "a backing service is unavailable; retry shortly"
UNREADABLE_CREDENTIALS = "the AI connection's stored credentials cannot be read; set them again with a PATCH"
INTERNAL_ERROR = "internal error"

# Where pydantic puts a request part in an error location, and how we name it to clients.
_REQUEST_PARTS = {"body": (), "query": (), "path": (), "header": ("header",)}


def classify(error: Exception, clock: Clock = utc_now) -> ClassifiedError:
    """What `error` is answered with and logged as. A refusal or a provider's failure is logged at info, with
    what our own errors say (they hold no secret) and the names of the fields refused, never their values;
    anything else at error, by its type and frames alone (vmx.failures.described)."""
    if isinstance(error, DomainError):
        return _refusal(error)
    if isinstance(error, RequestValidationError):
        details = request_validation_details(error)
        fields = {"error_code": "invalid_request", "fields": [detail.field for detail in details]}
        return _refused(HTTPStatus.BAD_REQUEST, "invalid_request", summary(details), fields, details)
    if isinstance(error, ProviderFailure):
        return _provider_failed(error.error, error.rate_limits, clock)
    if isinstance(error, ProviderError):
        return _provider_failed(error, RateLimits(), clock)
    if isinstance(error, CredentialsUnreadable):
        message = "stored credentials could not be opened"
        return _failed(HTTPStatus.BAD_GATEWAY, "credentials_unreadable", UNREADABLE_CREDENTIALS, error, message)
    if isinstance(error, StorageUnavailable | CredentialsUnavailable):
        return _failed(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", UNAVAILABLE, error, "dependency unavailable")
    return _failed(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", INTERNAL_ERROR, error, "unexpected error")


def route_not_found(method: str, path: str) -> ClassifiedError:
    return _refused(HTTPStatus.NOT_FOUND, "not_found", f"no route for {method} {path}", {"error_code": "not_found"})


def status_of(error: DomainError) -> HTTPStatus:
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def request_validation_details(error: RequestValidationError) -> list[ErrorDetail]:
    details = []
    for raw in error.errors():
        location = list(raw.get("loc", ()))
        if location and location[0] in _REQUEST_PARTS:
            location = [*_REQUEST_PARTS[location[0]], *location[1:]] or ["body"]
        if raw.get("type") == "json_invalid":
            details.append(ErrorDetail(field="body", message="is not valid JSON", type="json_invalid"))
        elif raw.get("type") == "missing" and not location:
            details.append(ErrorDetail(field="body", message="a JSON body is required", type="missing"))
        else:
            details.extend(error_details([{**raw, "loc": location}]))
    return details or [ErrorDetail(field="body", message="is invalid")]


def log_classified(logger: Logger, error: ClassifiedError, **context: object) -> None:
    write = logger.error if error.log_level >= logging.ERROR else logger.info
    write(error.log_message, extra={**error.log_fields, **context})


# The resolver's context key of the request's path (set by vmx.http.app.resolve), which decides the errors' shape.
REQUEST_PATH = "request_path"


def register_error_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Every exception a route raises, and a request no route matches, answered in the shape of its route."""

    def answer(error: ClassifiedError) -> Response[Any]:
        log_classified(logger, error)
        body = error_body(error, app.context.get(REQUEST_PATH, ""))
        return Response(error.status, content_types.APPLICATION_JSON, body, dict(error.headers) or None)

    @app.exception_handler(Exception)
    def _any(error: Exception) -> Response[Any]:
        return answer(classify(error))

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return answer(route_not_found(event.http_method, event.path))


def _refusal(error: DomainError) -> ClassifiedError:
    headers: dict[str, str] = {}
    if isinstance(error, OverCapacity):
        # from the refusal's own instant, as its Retry-After is: never a later window's
        headers = rate_limit_headers(error.rate_limits, error.refused_at)
        if error.retry_after_seconds is not None:
            headers["Retry-After"] = str(error.retry_after_seconds)
    fields: dict[str, object] = {"error_code": error.code, "error_message": error.message}
    if error.details:
        fields["fields"] = [detail.field for detail in error.details]
    return _refused(status_of(error), error.code, error.message, fields, error.details, headers)


def _provider_failed(error: ProviderError, rate_limits: RateLimits, clock: Clock) -> ClassifiedError:
    # A provider's 429 is told by the provider's own limits, when it sent them: they are what refused it.
    # (its retry headers are told by our Retry-After alone)
    providers = {name: value for name, value in error.rate_limit_headers.items() if name not in RETRY_HEADERS}
    headers = providers if error.status == 429 and providers else rate_limit_headers(rate_limits, clock())
    if rate_limits.priority_class:
        headers[PRIORITY_CLASS_HEADER] = rate_limits.priority_class
    if error.retry_after is not None:
        headers["Retry-After"] = error.retry_after
    fields = {"status": error.status, "error_code": error.code}
    return _refused(error.status, error.code, error.message, fields, headers=headers, logged_as="provider call failed")


def _refused(
    status: int,
    code: str,
    message: str,
    fields: Mapping[str, object],
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
    logged_as: str = "request refused",
) -> ClassifiedError:
    return ClassifiedError(
        int(status), code, message, tuple(details or ()), headers or {}, logging.INFO, logged_as, fields
    )


def _failed(status: int, code: str, message: str, error: Exception, logged_as: str) -> ClassifiedError:
    return ClassifiedError(int(status), code, message, (), {}, logging.ERROR, logged_as, described(error))

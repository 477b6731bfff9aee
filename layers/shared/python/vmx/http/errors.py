"""The one place where errors become HTTP responses: `{"error": {"code", "message", "details"}}`."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from vmx.credentials.errors import CredentialsUnavailable
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
from vmx.storage.errors import StorageUnavailable
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

# Where pydantic puts a request part in an error location, and how we name it to clients.
_REQUEST_PARTS = {"body": (), "query": (), "path": (), "header": ("header",)}


def error_payload(code: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": [detail.model_dump() for detail in details or []]}}


def error_response(
    status: HTTPStatus, code: str, message: str, details: list[ErrorDetail] | None = None
) -> Response[Any]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=error_payload(code, message, details),
    )


def status_of(error: DomainError) -> HTTPStatus:
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def domain_error_response(error: DomainError) -> Response[Any]:
    return error_response(status_of(error), error.code, error.message, error.details)


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


def register_error_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response[Any]:
        logger.info("request refused", extra={"error_code": error.code, "error_message": error.message})
        return domain_error_response(error)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[Any]:
        details = request_validation_details(error)
        logger.info("request refused", extra={"error_code": "invalid_request", "fields": [d.field for d in details]})
        return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", summary(details), details)

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(HTTPStatus.NOT_FOUND, "not_found", f"no route for {event.http_method} {event.path}")

    @app.exception_handler([StorageUnavailable, CredentialsUnavailable])
    def _unavailable(error: Exception) -> Response[Any]:
        logger.error("dependency unavailable", extra=described(error))
        return error_response(
            HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "a backing service is unavailable; retry shortly"
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[Any]:
        logger.error("unexpected error", extra=described(error))
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")

"""An error as it is classified once for every API function (`vmx.http.errors.classify`), and the two shapes its
body takes, each built here and nowhere else: the REST routes' `{"error": {"code", "message", "details"}}` and the
OpenAI routes' `{"error": {"message", "type", "param", "code"}}`, whose SDKs raise their exception by status and
read these four fields. Pure data: the CDK stack and the local stack render API Gateway's own errors with it too
(vmx.http.gateway_errors).
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vmx.errors import ErrorDetail

# The routes under an environment's OpenAI base URL (its own path) that are OpenAI's; every other route is REST.
OPENAI_ROUTES = ("chat/completions", "models")
# A request's path or a route's template (its parameters in braces) under an environment's OpenAI base URL
_OPENAI_ROUTE = re.compile(
    r"^/api/v1/workspaces/[^/]+/environments/[^/]+/(?:" + "|".join(map(re.escape, OPENAI_ROUTES)) + r")/?$"
)

# OpenAI's error types by status; any other is invalid_request_error below 500 and api_error from 500.
OPENAI_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class ClassifiedError:
    """What an exception is answered with, in either shape, and how it is logged. `log_fields` never hold an
    unexpected exception's text (vmx.failures.described)."""

    status: int
    code: str
    message: str
    details: tuple[ErrorDetail, ...] = ()
    # Retry-After and the x-ratelimit-* headers of a refusal or a provider's failure
    headers: Mapping[str, str] = field(default_factory=dict)
    log_level: int = logging.INFO
    log_message: str = "request refused"
    log_fields: Mapping[str, object] = field(default_factory=dict)


def is_openai_route(path: str) -> bool:
    return _OPENAI_ROUTE.match(path) is not None


def error_body(error: ClassifiedError, path: str) -> dict[str, Any]:
    """The error's body in the shape of the route at `path`: OpenAI's SDKs read the OpenAI routes' errors."""
    return openai_error_body(error) if is_openai_route(path) else rest_error_body(error)


def rest_error_body(error: ClassifiedError) -> dict[str, Any]:
    details = [detail.model_dump() for detail in error.details]
    return {"error": {"code": error.code, "message": error.message, "details": details}}


def openai_error_body(error: ClassifiedError) -> dict[str, Any]:
    param = error.details[0].field if error.details else None
    return {
        "error": {"message": error.message, "type": openai_error_type(error.status), "param": param, "code": error.code}
    }


def openai_error_type(status: int) -> str:
    return OPENAI_ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")

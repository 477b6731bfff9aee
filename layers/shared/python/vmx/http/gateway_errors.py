"""The body of an error that API Gateway (or the local stack's gateway) answers itself, before any function runs.

API Gateway keeps one body per kind of error for a whole REST API, whatever the path, and fills it in by simple
substitution (no VTL, so no choice by path). So the one body reads as both of the API's error shapes: the REST
routes' `{"error": {"code", "message", "details"}}` and the OpenAI routes' `{"error": {"message", "type", "param",
"code"}}`, whose SDKs raise their exception by status and read these four fields. Pure data: the CDK stack
renders it into its gateway responses, the firewall's bodies and its 405s, the local stack into its own errors.
"""

from typing import Any

# OpenAI's error types by status; any other is invalid_request_error below 500 and api_error from 500.
OPENAI_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error_type(status: int) -> str:
    return OPENAI_ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def gateway_error_payload(status: int, code: str, message: str) -> dict[str, Any]:
    """`status` chooses the OpenAI type; for a family of statuses (API Gateway's DEFAULT_4XX), any one of it."""
    return {
        "error": {"message": message, "type": openai_error_type(status), "param": None, "code": code, "details": []}
    }


def method_not_allowed_message(methods: list[str]) -> str:
    return f"this route answers only {', '.join(methods)}"

"""The body of an error that API Gateway (or the local stack's gateway) answers itself, before any function runs.

API Gateway keeps one body per kind of error for a whole REST API, whatever the path, and fills it in by simple
substitution (no VTL, so no choice by path). So the one body reads as both of the API's error shapes, the REST
routes' and the OpenAI routes' (vmx.http.error_shapes): the two bodies in one object. Pure data: the CDK stack
renders it into its gateway responses, the firewall's bodies and its 405s, the local stack into its own errors.
"""

from typing import Any

from vmx.http.error_shapes import ClassifiedError, openai_error_body, rest_error_body


def gateway_error_payload(status: int, code: str, message: str) -> dict[str, Any]:
    """`status` chooses the OpenAI type; for a family of statuses (API Gateway's DEFAULT_4XX), any one of it."""
    error = ClassifiedError(status, code, message)
    return {"error": {**openai_error_body(error)["error"], **rest_error_body(error)["error"]}}


def method_not_allowed_message(methods: list[str]) -> str:
    return f"this route answers only {', '.join(methods)}"

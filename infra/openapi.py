"""The API's one OpenAPI 3.1 document.

Each API function's resolver describes its own routes from their signatures and pydantic models (Powertools);
Powertools' OpenAPIMerge joins them. What no handler can say is added here, once: the API key that every
authorized route takes, the errors the API answers (REST's shape, or OpenAI's under an environment's OpenAI base
URL, and the gateway's own, which reads as both), If-Match, and the rate-limit headers of the OpenAI routes.

`python -m infra.openapi` writes docs/openapi.json; a test fails while that file is stale. The shared layer ships
it (vmx/http/openapi.json links to it) so that GET /api/v1/openapi.json serves the same bytes.
"""

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

from infra.handlers import imported_handler_module
from infra.system import FUNCTIONS, ROUTES, Function, Route
from vmx.http.error_shapes import is_openai_route

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCUMENT_PATH = PROJECT_ROOT / "docs" / "openapi.json"
TITLE = "VM-X AI Connections"
VERSION = "1.0.0"
DESCRIPTION = (
    "AI connections to LLM providers, scoped by workspace and environment, with encrypted credentials and "
    "capacity limits; and an OpenAI-compatible endpoint through them. Each environment's OpenAI base URL is "
    "`/api/v1/workspaces/{workspaceId}/environments/{environmentId}`: its routes answer errors in OpenAI's shape."
)
SECURITY_SCHEME = "apiKey"

_ERROR_MEANINGS = {
    400: "The request is invalid: the error names each field that is wrong.",
    401: "No API key, or one that is unknown or revoked.",
    403: "The API key's role or environments do not allow this.",
    404: "No such resource (or route), or not visible to this key.",
    409: "The request conflicts with the resource's state.",
    412: "If-Match names a version that is no longer current.",
    415: "The body is not JSON (Content-Type: application/json or any +json type).",
    429: "Over capacity, or too many requests: Retry-After says when to retry.",
    500: "An unexpected error; nothing the request asked for was half-done.",
    502: "The provider answered with an error, or the connection's stored credentials cannot be read.",
    503: "A backing service is unavailable; retry shortly.",
    504: "The provider did not answer in time.",
}
# What any route can answer: its input, the key (the authorizer), the gateway's throttle, and failures.
_ANY_ROUTE = (400, 401, 403, 404, 429, 500, 503)
_WITH_BODY = (415,)
# A connection has a version: its answers carry it as ETag, and its changes may be conditional on it (If-Match).
_CONNECTION = "/api/v1/workspaces/{workspaceId}/environments/{environmentId}/ai-connections/{connectionId}"
_VERSIONED = {("post", _CONNECTION.rsplit("/", 1)[0]), ("get", _CONNECTION), ("patch", _CONNECTION)}
_CONDITIONAL = {("patch", _CONNECTION), ("delete", _CONNECTION)}
_THROUGH_PROVIDER = (502, 504)
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "The tightest requests limit of the connection (or the provider's, on its 429); "
    "with priority classes, as the caller's class sees it: what that class can reach.",
    "x-ratelimit-remaining-requests": "Requests left in that limit's window.",
    "x-ratelimit-reset-requests": "When that window ends, as seconds such as `42s`.",
    "x-ratelimit-limit-tokens": "The tightest tokens limit.",
    "x-ratelimit-remaining-tokens": "Tokens left in that limit's window.",
    "x-ratelimit-reset-tokens": "When that window ends, as seconds such as `42s`.",
    "x-vmx-priority-class": "The priority class the request counted in, on a connection with classes: the key's, "
    "or the connection's default class when the key names none or one the connection lacks.",
}

_COMPONENTS: dict[str, Any] = {
    "schemas": {
        "ErrorDetail": {
            "type": "object",
            "required": ["field", "message", "type"],
            "properties": {
                "field": {"type": "string", "description": "Where: body.<path>, query.<name> or header.<name>."},
                "message": {"type": "string"},
                "type": {"type": "string"},
            },
        },
        "Error": {
            "type": "object",
            "description": "The REST routes' error. The gateway's own errors add OpenAI's `type` and `param`.",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
                    },
                }
            },
        },
        "OpenAIError": {
            "type": "object",
            "description": "The OpenAI routes' error, as OpenAI's SDKs read it. The gateway's own add `details`.",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": {"type": ["string", "null"]},
                        "code": {"type": ["string", "null"]},
                    },
                }
            },
        },
    },
    "headers": {
        "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}},
        **{name: {"description": text, "schema": {"type": "string"}} for name, text in RATE_LIMIT_HEADERS.items()},
        "ETag": {"description": "The resource's version, for If-Match.", "schema": {"type": "string"}},
    },
    "securitySchemes": {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of the workspace, as `Authorization: Bearer vmx_...`.",
        }
    },
    "parameters": {
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "description": 'Apply only if the resource is still at this version (an ETag such as "3"), or `*`.',
            "schema": {"type": "string"},
        }
    },
}


def api_functions(routes: tuple[Route, ...] = ROUTES) -> list[Function]:
    names = {route.function for route in routes}
    return [function for function in FUNCTIONS if function.name in names]


def api_document() -> dict[str, Any]:
    merge = OpenAPIMerge(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        security=[{SECURITY_SCHEME: []}],
        on_conflict="error",
    )
    seen: dict[str, Any] = {}
    for function in api_functions():
        app: APIGatewayRestResolver = imported_handler_module(function, f"openapi_handler_{function.name}").app
        schema = json.loads(app.get_openapi_json_schema(openapi_version="3.1.0"))
        for name, component in schema.get("components", {}).get("schemas", {}).items():
            # the merge keeps the last of two same-named schemas: they must be the same model
            if seen.setdefault(name, component) != component:
                raise ValueError(f"two API functions describe schema {name} differently")
        merge.add_schema(schema)
    document = merge.get_openapi_schema()
    _finish(document)
    return document


def _finish(document: dict[str, Any]) -> None:
    """What the gateway adds around every operation, and what Powertools says that we do not answer."""
    components = document.setdefault("components", {})
    # validation failures are our 400 (vmx.http.errors), and a response that fails its model is our 500
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        components["schemas"].pop(name, None)
    for kind, entries in _COMPONENTS.items():
        components.setdefault(kind, {}).update(copy.deepcopy(entries))
    components["responses"] = {
        _error_response_name(shape, status): _error_response(shape, status)
        for shape in ("Error", "OpenAIError")
        for status in _ERROR_MEANINGS
    }
    routes = {(route.method.lower(), route.path): route for route in ROUTES}
    functions = {function.name: function for function in api_functions()}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = routes[(method, path)]
            operation["tags"] = [route.function]
            # Powertools names an operation by its handler function, then its path and method: the name is enough
            operation["operationId"] = operation["operationId"].split("_api_v1_", 1)[0]
            _finish_operation(path, method, operation, route.authorized)
    document["paths"] = dict(sorted(document["paths"].items()))
    document["tags"] = [{"name": name, "description": function.description} for name, function in functions.items()]


def _error_response_name(shape: str, status: int) -> str:
    return f"{shape}{status}"


def _error_response(shape: str, status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
    }
    if status == 429:
        names = ["Retry-After", *(RATE_LIMIT_HEADERS if shape == "OpenAIError" else ())]
        response["headers"] = _header_refs(names)
    return response


def _header_refs(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _finish_operation(path: str, method: str, operation: dict[str, Any], authorized: bool) -> None:
    # the OpenAI routes: their errors have OpenAI's shape, their answers carry x-ratelimit-* headers
    openai = is_openai_route(path)
    responses: dict[str, Any] = {
        str(status): answer for status, answer in operation["responses"].items() if int(status) not in (422, 500)
    }
    for status, answer in responses.items():
        if int(status) == 204:
            answer.pop("content", None)
        elif openai:
            answer["headers"] = _header_refs(RATE_LIMIT_HEADERS)
        if (method, path) in _VERSIONED and int(status) < 300:
            answer.setdefault("headers", {}).update(_header_refs(["ETag"]))
    errors = list(_ANY_ROUTE)
    if "requestBody" in operation:
        errors += _WITH_BODY
    if method in ("post", "patch", "delete"):
        # a name taken, a delete of what still holds others or that raced with a create
        errors.append(409)
    if (method, path) in _CONDITIONAL:
        errors.append(412)
        operation.setdefault("parameters", []).append({"$ref": "#/components/parameters/IfMatch"})
    if openai:
        errors += _THROUGH_PROVIDER
    if not authorized:
        operation["security"] = []
        errors = [status for status in errors if status not in (401, 403)]
    shape = "OpenAIError" if openai else "Error"
    for error in errors:
        responses[str(error)] = {"$ref": f"#/components/responses/{_error_response_name(shape, error)}"}
    operation["responses"] = dict(sorted(responses.items()))


def document_text() -> str:
    return json.dumps(api_document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    DOCUMENT_PATH.write_text(document_text(), encoding="utf-8")
    print(f"wrote {DOCUMENT_PATH.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()

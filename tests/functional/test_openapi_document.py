"""The API's OpenAPI document: generated from the handlers (infra/openapi.py), checked in as docs/openapi.json,
and served by the API itself, to anyone (issue 12, item 1)."""

import json
from pathlib import Path

from infra.openapi import DOCUMENT_PATH, RATE_LIMIT_HEADERS, document_text
from infra.system import ROUTES
from tests.functional.conftest import Tenant

DOCUMENT_ROUTE = "/api/v1/openapi.json"
# an environment's OpenAI base URL, and what it serves in OpenAI's shape; the rest of the API answers REST's
OPENAI_BASE_URL = "/api/v1/workspaces/{workspaceId}/environments/{environmentId}"
OPENAI_ROUTES = {OPENAI_BASE_URL + "/chat/completions", OPENAI_BASE_URL + "/models"}


def test_the_checked_in_document_is_what_the_handlers_describe() -> None:
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == document_text(), (
        "docs/openapi.json is stale: run `uv run --frozen python -m infra.openapi` and commit it"
    )


def test_the_shared_layer_ships_the_checked_in_document() -> None:
    shipped = Path(__file__).resolve().parents[2] / "layers" / "shared" / "python" / "vmx" / "openapi.json"
    assert shipped.read_bytes() == DOCUMENT_PATH.read_bytes()


def test_the_api_serves_it_without_a_key(tenant: Tenant) -> None:
    response = tenant.api.as_key(None).get(DOCUMENT_ROUTE)

    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == DOCUMENT_PATH.read_text(encoding="utf-8")


def test_every_route_is_described_with_its_key_and_errors() -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    described = {(method.upper(), path) for path, item in document["paths"].items() for method in item}

    assert described == {(route.method, route.path) for route in ROUTES}
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the workspace, as `Authorization: Bearer vmx_...`.",
    }
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        errors = {status: answer["$ref"] for status, answer in operation["responses"].items() if status >= "400"}
        if route.authorized:
            assert "security" not in operation and {"401", "403"} <= set(errors)
        else:
            assert operation["security"] == [] and not {"401", "403"} & set(errors)
        shape = "OpenAIError" if route.path in OPENAI_ROUTES else "Error"
        assert all(ref == f"#/components/responses/{shape}{status}" for status, ref in errors.items()), route
        assert {"400", "404", "429", "500", "503"} <= set(errors)


def test_the_openai_routes_declare_the_rate_limit_headers_and_their_429_retry_after() -> None:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    completions = document["paths"]["/api/v1/workspaces/{workspaceId}/environments/{environmentId}/chat/completions"]
    answer = completions["post"]["responses"]["200"]
    over_capacity = document["components"]["responses"]["OpenAIError429"]

    assert set(answer["headers"]) == set(RATE_LIMIT_HEADERS)
    assert set(answer["content"]) == {"application/json", "text/event-stream"}
    assert set(over_capacity["headers"]) == {"Retry-After", *RATE_LIMIT_HEADERS}
    assert set(document["components"]["responses"]["Error429"]["headers"]) == {"Retry-After"}

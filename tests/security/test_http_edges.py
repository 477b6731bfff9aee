"""What an ordinary client or a hostile one sends at the HTTP level: every JSON media type is JSON whatever its
case, anything else (or none, or an encoding we do not decode) is a 415 naming it, and an integer too long to
read is a 400: never a 500, on every route that takes a body (issue 11, items 9 and 11)."""

import json
from typing import Any

import pytest

from tests.functional.api import Api, ApiResponse
from tests.functional.conftest import Tenant
from tests.loopback_providers import loopback_provider

HUGE = "9" * 5000


def routes(tenant: Tenant, platform_admin: Api) -> dict[str, tuple[Api, str, str, dict[str, Any]]]:
    """Each route that takes a body: (who calls it, method, path, a valid body)."""
    connection = tenant.api.post(
        tenant.connections_path,
        {"name": "patched", "provider": "openai", "config": {"apiKey": "sk-test", "baseUrl": "http://127.0.0.1:9"}},
    ).body
    environment = f"{tenant.workspace_path}/environments/{tenant.environment_id}"
    return {
        "create workspace": (platform_admin, "POST", "/api/v1/workspaces", {"name": "Another"}),
        "create environment": (tenant.api, "POST", f"{tenant.workspace_path}/environments", {"name": "qa"}),
        "create api key": (tenant.api, "POST", f"{tenant.workspace_path}/api-keys", {"name": "ci", "role": "viewer"}),
        "create connection": (
            tenant.api,
            "POST",
            tenant.connections_path,
            {"name": "created", "provider": "openai", "config": {"apiKey": "sk-test"}},
        ),
        "patch connection": (
            tenant.api,
            "PATCH",
            f"{tenant.connections_path}/{connection['connectionId']}",
            {"description": "patched"},
        ),
        "completion": (
            tenant.api,
            "POST",
            f"{environment}/chat/completions",
            {"model": "patched/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        ),
    }


ROUTES = ["create workspace", "create environment", "create api key", "create connection", "patch connection"]


def send(
    api: Api, method: str, path: str, raw: bytes, headers: dict[str, str], without: tuple[str, ...] = ()
) -> ApiResponse:
    # Api.request sets Content-Type unless a header replaces it; `without` takes headers out altogether
    request_headers = {name: value for name, value in headers.items() if name not in without}
    if "Content-Type" in without:
        response = api.open(method, path, raw, {**request_headers, "Authorization": f"Bearer {api.token}"})
        body = response.body + (b"".join(response.stream) if response.stream else b"")
        if response.finish:
            response.finish()
        return ApiResponse(response.status, {key.lower(): value for key, value in response.headers}, body.decode())
    return api.request(method, path, raw=raw, headers=request_headers)


@pytest.mark.parametrize(
    "media_type",
    ["APPLICATION/JSON", "Application/Json; charset=utf-8", "application/merge-patch+json", "application/vnd.api+json"],
)
@pytest.mark.parametrize("route", [*ROUTES, "completion"])
def test_every_json_media_type_is_read_as_json(
    tenant: Tenant, platform_admin: Api, route: str, media_type: str
) -> None:
    with loopback_provider("openai") as provider:
        tenant.api.post(
            tenant.connections_path,
            {
                "name": "patched2",
                "provider": "openai",
                "config": {"apiKey": provider.api_key or "sk-any", "baseUrl": provider.base_url},
            },
        )
        api, method, path, body = routes(tenant, platform_admin)[route]
        if route == "completion":
            body = {**body, "model": "patched2/gpt-4o-mini"}

        response = send(api, method, path, json.dumps(body).encode(), {"Content-Type": media_type})

    assert 200 <= response.status < 300, response.text


@pytest.mark.parametrize(
    ("headers", "without", "named"),
    [
        ({"Content-Type": "text/plain"}, (), "text/plain"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, (), "application/x-www-form-urlencoded"),
        ({}, ("Content-Type",), "Content-Type: application/json"),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, (), "gzip"),
    ],
    ids=["text", "form", "none", "gzip"],
)
@pytest.mark.parametrize("route", [*ROUTES, "completion"])
def test_a_body_that_is_not_json_as_sent_is_a_415_naming_why(
    tenant: Tenant,
    platform_admin: Api,
    route: str,
    headers: dict[str, str],
    without: tuple[str, ...],
    named: str,
) -> None:
    api, method, path, body = routes(tenant, platform_admin)[route]

    response = send(api, method, path, json.dumps(body).encode(), headers, without)

    assert response.status == 415, response.text
    assert named in response.error["message"]


@pytest.mark.parametrize("route", [*ROUTES, "completion"])
def test_an_integer_too_long_to_read_is_a_400_naming_the_body(tenant: Tenant, platform_admin: Api, route: str) -> None:
    api, method, path, body = routes(tenant, platform_admin)[route]
    raw = json.dumps(body)[:-1] + f', "extra": {HUGE}}}'

    response = send(api, method, path, raw.encode(), {"Content-Type": "application/json"})

    assert response.status == 400, response.text
    assert "4,300 digits" in response.error["message"]
    assert HUGE not in response.text


def test_every_answer_says_nosniff_and_no_store_success_or_error_rest_or_openai_streamed_or_not(
    tenant: Tenant, platform_admin: Api
) -> None:
    with loopback_provider("openai") as provider:
        config = {"apiKey": provider.api_key or "sk-any", "baseUrl": provider.base_url}
        tenant.api.post(tenant.connections_path, {"name": "streamed", "provider": "openai", "config": config})
        completions = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
        chat = {"model": "streamed/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        answers = [
            # the response that shows a new API key, once
            tenant.api.post(f"{tenant.workspace_path}/api-keys", {"name": "ci", "role": "viewer"}),
            tenant.api.get(tenant.connections_path),
            tenant.api.get(f"{tenant.connections_path}/00000000-0000-4000-8000-000000000000"),
            tenant.api.post(completions, chat),
            tenant.api.post(completions, {**chat, "stream": True}),
            tenant.api.post(completions, {**chat, "model": "missing/gpt-4o"}),
            # refused by the gateway before any function
            tenant.api.as_key("vmx_not-a-key").get(tenant.connections_path),
        ]

    assert [answer.status for answer in answers] == [201, 200, 404, 200, 200, 404, 401]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"

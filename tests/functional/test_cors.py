"""The functions behind routes let the console's origin, and no other, read their responses."""

import os
from collections.abc import Iterator

import pytest

from infra.system import CONSOLE_ORIGIN_ENV_VAR
from local_stack.gateway import ApiGateway
from tests.functional.api import in_process_gateway
from tests.functional.conftest import Tenant

CONSOLE = "https://d111111abcdef8.cloudfront.net"


@pytest.fixture(scope="module")
def gateway(aws: None) -> Iterator[ApiGateway]:
    """Handlers of their own, which read their settings with the console's origin set."""
    os.environ[CONSOLE_ORIGIN_ENV_VAR] = CONSOLE
    try:
        yield in_process_gateway()
    finally:
        del os.environ[CONSOLE_ORIGIN_ENV_VAR]


def test_the_console_may_read_a_connection_and_its_etag(tenant: Tenant) -> None:
    body = {"name": "openai-prod", "provider": "openai", "config": {"apiKey": "sk-test-0123456789"}}
    created = tenant.api.post(tenant.connections_path, body, headers={"Origin": CONSOLE})
    assert created.status == 201, created.text

    response = tenant.api.get(f"{tenant.connections_path}/{created.body['connectionId']}", headers={"Origin": CONSOLE})

    assert response.status == 200
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert response.headers["vary"] == "Origin"
    assert "ETag" in response.headers["access-control-expose-headers"].split(", ")
    assert response.headers["etag"] == '"1"'


def test_the_console_may_read_the_errors_of_each_api_function(tenant: Tenant) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    responses = {
        "tenancy": tenant.api.get(f"{tenant.workspace_path}/api-keys/{missing}", headers={"Origin": CONSOLE}),
        "connections": tenant.api.get(f"{tenant.connections_path}/{missing}", headers={"Origin": CONSOLE}),
        "completions": tenant.api.post(
            f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions",
            {"model": "nowhere/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Origin": CONSOLE},
        ),
    }

    assert {name: response.status for name, response in responses.items()} == dict.fromkeys(responses, 404)
    assert all(response.headers["access-control-allow-origin"] == CONSOLE for response in responses.values())


def test_another_origin_may_not_read_responses(tenant: Tenant) -> None:
    response = tenant.api.get(tenant.connections_path, headers={"Origin": "https://evil.example"})

    assert response.status == 200
    assert not any(name.startswith("access-control-") for name in response.headers)

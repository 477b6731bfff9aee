"""A connection cannot be pointed inside (item 8 of issue 11) or back at the gateway (item 12): refused at
create and at update with a 400 naming config.baseUrl, nothing stored; and a request that comes from this
gateway is refused before it reserves anything."""

from typing import Any

import pytest

from tests.functional.conftest import Tenant
from tests.loopback_providers import LoopbackProvider, loopback_provider

REFUSED = [
    "https://169.254.169.254/latest/meta-data",
    "https://2852039166/",
    "https://0251.0376.0251.0376/",
    "https://10.0.0.1/v1",
    "https://192.168.1.1/v1",
    "https://[fd00::1]/v1",
    "https://[::ffff:10.0.0.1]/v1",
    # a name that resolves (with the tests' resolver) to nothing
    "https://nowhere.invalid/v1",
]
MALFORMED = [
    "https://proxy.example.com/v1\r\nX-Injected: 1",
    "https://proxy.example.com/v1\n",
    "https://proxy.example.com/\tv1",
    "https://user:pass@proxy.example.com/v1",
    "ftp://proxy.example.com/v1",
    "http://proxy.example.com/v1",
]


def create(tenant: Tenant, base_url: str, name: str = "prod") -> Any:
    config = {"apiKey": "sk-test", "baseUrl": base_url}
    return tenant.api.post(tenant.connections_path, {"name": name, "provider": "openai", "config": config})


@pytest.mark.parametrize("base_url", REFUSED + MALFORMED)
def test_a_base_url_that_leads_inside_or_is_malformed_is_refused_at_create(tenant: Tenant, base_url: str) -> None:
    response = create(tenant, base_url)

    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == "config.baseUrl"
    assert "sk-test" not in response.text
    assert tenant.api.get(tenant.connections_path).body["items"] == []


@pytest.mark.parametrize("base_url", REFUSED + MALFORMED)
def test_a_base_url_that_leads_inside_is_refused_at_update_and_the_connection_is_unchanged(
    tenant: Tenant, base_url: str
) -> None:
    created = create(tenant, "https://proxy.example.com/v1").body
    path = f"{tenant.connections_path}/{created['connectionId']}"

    response = tenant.api.patch(path, {"config": {"baseUrl": base_url, "apiKey": "sk-new"}})

    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == "config.baseUrl"
    stored = tenant.api.get(path).body
    assert stored["config"]["baseUrl"] == "https://proxy.example.com/v1"
    assert stored["version"] == created["version"]


def test_loopback_providers_are_allowed_where_the_setting_allows_them(tenant: Tenant) -> None:
    # the tests' environment, as the local stack's, sets ALLOW_LOOPBACK_BASE_URLS; AWS does not
    assert create(tenant, "http://127.0.0.1:9/v1").status == 201


@pytest.fixture
def provider() -> Any:
    with loopback_provider("openai") as server:
        yield server


def test_every_request_to_a_provider_carries_the_hop_marker(tenant: Tenant, provider: LoopbackProvider) -> None:
    config = {"apiKey": provider.api_key or "sk-any", "baseUrl": provider.base_url}
    tenant.api.post(tenant.connections_path, {"name": "prod", "provider": "openai", "config": config})

    path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
    assert (
        tenant.api.post(path, {"model": "prod/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).status
        == 200
    )

    assert provider.requests[0].headers["x-vmx-hop"] == "1"


def test_a_request_that_came_through_this_gateway_is_refused_before_admission(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    config = {"apiKey": provider.api_key or "sk-any", "baseUrl": provider.base_url}
    tenant.api.post(
        tenant.connections_path,
        {"name": "prod", "provider": "openai", "config": config, "capacity": [{"period": "day", "requests": 1}]},
    )
    path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
    body = {"model": "prod/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    looped = tenant.api.post(path, body, headers={"X-Vmx-Hop": "1"})

    assert looped.status == 400
    assert looped.error["code"] == "loop_detected"
    assert provider.requests == []
    # the day's one request is still there to be made
    assert tenant.api.post(path, body).status == 200

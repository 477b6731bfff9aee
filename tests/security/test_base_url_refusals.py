"""A connection cannot be pointed inside (item 8 of issue 11) or back at the gateway (item 12): refused at
create and at update with a 400 naming config.baseUrl, nothing stored; and a request that comes from this
gateway is refused before it reserves anything. Names resolve with the tests' fake resolver, and no socket is
opened towards any address that is not loopback."""

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3.util.connection

from infra.system import COMPLETIONS, CONNECTIONS
from tests.fake_resolver import PUBLIC_ADDRESS, FakeResolver
from tests.functional.conftest import Tenant
from tests.loopback_providers import LoopbackProvider, loopback_provider
from vmx.providers import addresses

REFUSED = [
    "https://169.254.169.254/latest/meta-data",
    "https://2852039166/",
    "https://0251.0376.0251.0376/",
    "https://10.0.0.1/v1",
    "https://192.168.1.1/v1",
    "https://[fd00::1]/v1",
    "https://[::ffff:10.0.0.1]/v1",
    "https://[::10.0.0.1]/v1",
    "https://[fec0::1]/v1",
    # names, by what they resolve to (fake_names below), and one that resolves to nothing
    "https://internal.example.com/v1",
    "https://metadata.example.com/v1",
    "https://mixed.example.com/v1",
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


@pytest.fixture(autouse=True)
def fake_names(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    """The resolver the functions use in the machine's place, for this module's names."""
    resolver = FakeResolver(
        {
            "internal.example.com": ["10.0.0.7"],
            "metadata.example.com": ["169.254.169.254"],
            "mixed.example.com": [PUBLIC_ADDRESS, "192.168.0.2"],
        }
    )
    monkeypatch.setattr(addresses, "system_resolver", resolver)
    return resolver


class NoConnect:
    """In place of every socket connect urllib3 could make: any attempt is counted and fails."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, address: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(address)
        raise AssertionError("no connection may be opened")


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> NoConnect:
    connect = NoConnect()
    # the guarded pool's connect, and urllib3's own (were the pool ever unguarded)
    monkeypatch.setattr(addresses, "create_connection", connect)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)
    return connect


@pytest.fixture
def in_aws(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Turns the connections and completions functions into their AWS selves (no loopback) from the call on."""
    # the handlers the in-process gateway loaded (tests/functional/api.py), and their cached settings and wiring
    handlers = [sys.modules[f"local_stack_function_{function.name}"] for function in (CONNECTIONS, COMPLETIONS)]

    def switch() -> None:
        monkeypatch.setenv("ALLOW_LOOPBACK_BASE_URLS", "false")
        for handler in handlers:
            handler.function.rebuild()

    yield switch
    # rebuilt from the restored environment when next used
    for handler in handlers:
        handler.function.rebuild()


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


def completions_path(tenant: Tenant) -> str:
    return f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"


PROMPT = [{"role": "user", "content": "hi"}]


def test_in_aws_loopback_is_refused_when_stored_and_when_connecting(
    tenant: Tenant, provider: LoopbackProvider, in_aws: Callable[[], None]
) -> None:
    # Given a connection to a loopback provider, stored where loopback is allowed
    created = create(tenant, provider.base_url).body
    path = f"{tenant.connections_path}/{created['connectionId']}"

    # When the functions run as in AWS
    in_aws()

    # Then no connection to loopback can be made, stored, or kept by a change of key
    answer = tenant.api.post(completions_path(tenant), {"model": "prod/gpt-4o-mini", "messages": PROMPT})
    assert answer.status == 502
    assert answer.error["code"] == "provider_address_refused"
    assert "loopback" in answer.error["message"]
    assert provider.requests == []
    refused = create(tenant, "http://127.0.0.1:9/v1", name="other")
    assert refused.status == 400
    assert refused.error["details"][0]["field"] == "config.baseUrl"
    assert tenant.api.patch(path, {"config": {"apiKey": "sk-new"}}).status == 400
    assert [item["name"] for item in tenant.api.get(tenant.connections_path).body["items"]] == ["prod"]


def test_a_name_rebound_inside_after_it_was_stored_is_not_connected_to_and_spends_nothing(
    tenant: Tenant, fake_names: FakeResolver, no_connect: NoConnect
) -> None:
    # Given a connection whose name resolved to a public address when it was stored
    fake_names.names["rebound.example.com"] = [PUBLIC_ADDRESS]
    config = {"apiKey": "sk-rebound-secret", "baseUrl": "https://rebound.example.com/v1"}
    body = {"name": "prod", "provider": "openai", "config": config, "capacity": [{"period": "day", "requests": 1}]}
    assert tenant.api.post(tenant.connections_path, body).status == 201

    # When its DNS now answers with a private address
    fake_names.names["rebound.example.com"] = ["10.0.0.1"]
    answers = [
        tenant.api.post(completions_path(tenant), {"model": "prod/gpt-4o-mini", "messages": PROMPT}) for _ in range(2)
    ]

    # Then no socket is opened, the refusal names why, and the day's one request is not spent (no 429)
    assert no_connect.calls == []
    assert [answer.status for answer in answers] == [502, 502]
    error = answers[0].error
    assert error["code"] == "provider_address_refused"
    assert "rebound.example.com" in error["message"]
    assert "not a public address" in error["message"]
    assert "sk-rebound-secret" not in answers[0].text


def test_every_request_to_a_provider_carries_the_hop_marker(tenant: Tenant, provider: LoopbackProvider) -> None:
    config = {"apiKey": provider.api_key or "sk-any", "baseUrl": provider.base_url}
    tenant.api.post(tenant.connections_path, {"name": "prod", "provider": "openai", "config": config})

    path = f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"
    assert (
        tenant.api.post(path, {"model": "prod/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).status
        == 200
    )

    assert provider.requests[0].headers["x-vmx-hop"] == "1"


def test_a_streamed_request_to_a_provider_carries_the_hop_marker(tenant: Tenant, provider: LoopbackProvider) -> None:
    config = {"apiKey": provider.api_key or "sk-any", "baseUrl": provider.base_url}
    tenant.api.post(tenant.connections_path, {"name": "prod", "provider": "openai", "config": config})

    streamed = tenant.api.post(
        completions_path(tenant), {"model": "prod/gpt-4o-mini", "messages": PROMPT, "stream": True}
    )

    assert streamed.status == 200
    assert provider.requests[0].body["stream"] is True
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

    looped = [tenant.api.post(path, body, headers={name: "1"}) for name in ("X-Vmx-Hop", "x-vmx-hop")]

    assert [response.status for response in looped] == [400, 400]
    # OpenAI's error shape, which the gateway that sent it passes on to its own client
    assert json.loads(looped[0].text) == {
        "error": {
            "message": "this request came from this gateway: an AI connection's baseUrl leads back to it",
            "type": "invalid_request_error",
            "param": None,
            "code": "loop_detected",
        }
    }
    assert provider.requests == []
    # the day's one request is still there to be made
    assert tenant.api.post(path, body).status == 200


def path_for_test(tenant: Tenant, connection_id: str | None = None) -> str:
    """Where a connection is tested: a stored one, or (None) one before it is created."""
    return f"{tenant.connections_path}/{connection_id}/test" if connection_id else f"{tenant.connections_path}/test"


@pytest.mark.parametrize("base_url", REFUSED + MALFORMED)
def test_a_connection_tested_before_it_is_created_is_refused_as_the_create_would_be(
    tenant: Tenant, base_url: str, no_connect: NoConnect
) -> None:
    draft = {"name": "prod", "provider": "openai", "config": {"apiKey": "sk-test", "baseUrl": base_url}}

    response = tenant.api.post(path_for_test(tenant), draft)

    assert response.status == 400, response.text
    assert response.error["details"][0]["field"] == "config.baseUrl"
    assert "sk-test" not in response.text
    assert no_connect.calls == []


def test_changes_tested_on_a_stored_connection_are_refused_as_the_update_would_be(
    tenant: Tenant, no_connect: NoConnect
) -> None:
    created = create(tenant, "https://proxy.example.com/v1").body

    inside = tenant.api.post(
        path_for_test(tenant, created["connectionId"]), {"config": {"baseUrl": "https://10.0.0.1/v1", "apiKey": "sk-2"}}
    )
    # the stored key may not be sent to a new place, tested or not
    elsewhere = tenant.api.post(
        path_for_test(tenant, created["connectionId"]), {"config": {"baseUrl": "https://other.example.com/v1"}}
    )

    assert (inside.status, inside.error["details"][0]["field"]) == (400, "config.baseUrl")
    assert (elsewhere.status, elsewhere.error["details"][0]["field"]) == (400, "config.baseUrl")
    assert "resend apiKey" in elsewhere.error["message"]
    assert no_connect.calls == []


def test_a_stored_connection_whose_name_rebound_inside_tests_as_misconfigured_without_a_connection(
    tenant: Tenant, fake_names: FakeResolver, no_connect: NoConnect
) -> None:
    fake_names.names["rebound.example.com"] = [PUBLIC_ADDRESS]
    created = create(tenant, "https://rebound.example.com/v1").body
    fake_names.names["rebound.example.com"] = ["10.0.0.1"]

    tested = tenant.api.post(path_for_test(tenant, created["connectionId"]), None)

    assert tested.status == 200
    assert (tested.body["outcome"], tested.body["ok"]) == ("misconfigured", False)
    assert "rebound.example.com" in tested.body["message"] and "change its baseUrl" in tested.body["message"]
    assert no_connect.calls == []

"""The OpenAI-compatible endpoint through the gateway emulation: a loopback provider behind a connection,
capacity counted on moto, errors in OpenAI's shape."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.functional.conftest import Tenant
from tests.loopback_providers import LoopbackProvider, loopback_provider
from vmx.tenancy.models import Role


@pytest.fixture
def provider() -> Iterator[LoopbackProvider]:
    with loopback_provider("openai") as server:
        yield server


def connect(tenant: Tenant, provider: LoopbackProvider, name: str = "openai-prod", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "provider": "openai", "config": {"apiKey": provider.api_key, "baseUrl": provider.base_url}}
    response = tenant.api.post(tenant.connections_path, {**body, **fields})
    assert response.status == 201, response.text
    created: dict[str, Any] = response.body
    return created


def completions_path(tenant: Tenant) -> str:
    return f"{tenant.workspace_path}/environments/{tenant.environment_id}/chat/completions"


def ask(tenant: Tenant, model: str = "openai-prod/gpt-4o-mini", **fields: Any) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello"}], **fields}
    return tenant.api.post(completions_path(tenant), body)


def test_a_completion_goes_through_the_connection(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider, capacity=[{"period": "minute", "requests": 10, "tokens": 10000}])

    response = ask(tenant, max_tokens=50)

    assert response.status == 200, response.text
    assert response.body["object"] == "chat.completion"
    assert response.body["model"] == "openai-prod/gpt-4o-mini"
    assert response.body["usage"]["total_tokens"] == 19
    assert provider.requests[0].body["model"] == "gpt-4o-mini"
    assert provider.requests[0].body["max_tokens"] == 50
    assert response.headers["x-ratelimit-limit-requests"] == "10"
    assert response.headers["x-ratelimit-remaining-requests"] == "9"
    assert response.headers["x-ratelimit-remaining-tokens"] == str(10000 - 19)
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    # a connection without priority classes names none
    assert "x-vmx-priority-class" not in response.headers


def test_a_stream_is_a_valid_event_stream(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider)

    response = ask(tenant, stream=True, stream_options={"include_usage": True})

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]) == (
        "Hello from the loopback provider."
    )
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_over_capacity_is_a_429_that_names_the_limit(tenant: Tenant, provider: LoopbackProvider) -> None:
    # windows a test exhausts are days: its requests cannot straddle a boundary, as a minute's could
    connect(tenant, provider, capacity=[{"period": "day", "requests": 2}])

    answers = [ask(tenant) for _ in range(3)]

    assert [answer.status for answer in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.error["message"] == "AI connection 'openai-prod' reached its per-day limit of 2 requests"
    assert refused.error["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(provider.requests) == 2


def test_a_spent_lifetime_limit_says_it_never_resets(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider, capacity=[{"period": "lifetime", "requests": 1}])

    ask(tenant)
    refused = ask(tenant)

    assert refused.status == 429
    assert "never resets" in refused.error["message"]
    assert "retry-after" not in refused.headers


def test_a_tokens_reservation_that_does_not_fit_is_refused_before_the_provider(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    connect(tenant, provider, capacity=[{"period": "hour", "tokens": 100}])

    refused = ask(tenant, max_tokens=500)

    assert refused.status == 429
    assert "per-hour limit of 100 tokens" in refused.error["message"]
    assert "lower max_tokens" in refused.error["message"]
    assert "retry-after" not in refused.headers
    assert provider.requests == []


def test_per_ip_windows_count_each_client_apart(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider, capacity=[{"period": "day", "requests": 1, "dimension": "source-ip"}])
    body = {"model": "openai-prod/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    first = tenant.api.from_ip("203.0.113.1").post(completions_path(tenant), body)
    again = tenant.api.from_ip("203.0.113.1").post(completions_path(tenant), body)
    other = tenant.api.from_ip("203.0.113.2").post(completions_path(tenant), body)

    assert [first.status, again.status, other.status] == [200, 429, 200]


def test_a_capacity_change_applies_at_once_without_resetting_counts(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = connect(tenant, provider, capacity=[{"period": "day", "requests": 1}])
    ask(tenant)
    assert ask(tenant).status == 429

    tenant.api.patch(
        f"{tenant.connections_path}/{created['connectionId']}", {"capacity": [{"period": "day", "requests": 2}]}
    )

    assert ask(tenant).status == 200
    assert ask(tenant).status == 429


def test_models_outside_allowed_models_are_refused_before_anything_moves(
    tenant: Tenant, provider: LoopbackProvider
) -> None:
    created = connect(
        tenant, provider, allowedModels=["gpt-4o"], capacity=[{"period": "minute", "requests": 5, "tokens": 100000}]
    )

    refused = ask(tenant, model="openai-prod/gpt-4o-mini")
    capacity = tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}/capacity")

    assert refused.status == 403
    assert "allowed models: gpt-4o" in refused.error["message"]
    assert provider.requests == []
    assert capacity.body["windows"][0]["requestsUsed"] == 0


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [("no-slash", 400, "invalid_request"), ("missing/gpt-4o", 404, "model_not_found")],
)
def test_bad_model_addresses(tenant: Tenant, provider: LoopbackProvider, model: str, status: int, code: str) -> None:
    connect(tenant, provider)

    response = ask(tenant, model=model)

    assert (response.status, response.error["code"]) == (status, code)


def test_provider_failures_come_back_in_openai_shape(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider)
    provider.fail_with(429, retry_after="7")
    provider.fail_with(401)

    throttled = ask(tenant)
    refused_key = ask(tenant)

    assert (throttled.status, throttled.headers["retry-after"]) == (429, "7")
    assert refused_key.status >= 400
    assert provider.api_key not in refused_key.text


def test_the_model_list_names_connections_and_their_models(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider, allowedModels=["gpt-4o", "gpt-4o-mini"])

    listed = tenant.api.get(f"{tenant.workspace_path}/environments/{tenant.environment_id}/models")

    assert listed.body["object"] == "list"
    assert [model["id"] for model in listed.body["data"]] == ["openai-prod/gpt-4o", "openai-prod/gpt-4o-mini"]


def test_only_keys_that_may_use_connections_send_completions(tenant: Tenant, provider: LoopbackProvider) -> None:
    connect(tenant, provider)

    viewer = tenant.as_role(Role.VIEWER).post(
        completions_path(tenant), {"model": "openai-prod/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    )
    gateway = tenant.as_role(Role.GATEWAY).post(
        completions_path(tenant), {"model": "openai-prod/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    )

    assert viewer.status == 403
    assert gateway.status == 200


def test_capacity_utilization_shows_every_window(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = connect(
        tenant,
        provider,
        capacity=[
            {"period": "hour", "requests": 10, "tokens": 1000},
            {"period": "lifetime", "requests": 100},
            {"period": "day", "requests": 5, "dimension": "source-ip"},
        ],
    )
    ask(tenant, max_tokens=20)

    report = tenant.api.get(f"{tenant.connections_path}/{created['connectionId']}/capacity").body

    windows = {(window["period"], window["dimension"]): window for window in report["windows"]}
    assert windows[("hour", None)]["requestsUsed"] == 1
    assert windows[("hour", None)]["tokensRemaining"] == 1000 - 19
    assert windows[("lifetime", None)]["resetsAt"] is None
    assert windows[("day", "source-ip")]["requestsRemaining"] == 4


def test_rotating_credentials_does_not_reset_counts(tenant: Tenant, provider: LoopbackProvider) -> None:
    created = connect(tenant, provider, capacity=[{"period": "day", "requests": 1}])
    ask(tenant)

    rotated = tenant.api.patch(f"{tenant.connections_path}/{created['connectionId']}", {"config": {"apiKey": "sk-new"}})

    assert rotated.status == 200
    assert ask(tenant).status == 429

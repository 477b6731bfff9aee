"""The completion use case over fakes: what happens before, around and after the provider call."""

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.capacity_fakes import InMemoryCapacityCounters
from tests.unit.builders import World, create_request, principal
from vmx.capacity.ledger import CounterScope, limits_for
from vmx.completions.openai_models import ChatCompletion, ChatCompletionRequest
from vmx.completions.providers import ProviderCall, ProviderError, ProviderResult
from vmx.connections.capacity import CapacityDimension
from vmx.errors import Forbidden
from vmx.gateway.credentials_cache import CredentialCache
from vmx.gateway.service import CompletionService, OverCapacity, ProviderFailure
from vmx.tenancy.models import Role

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


class ScriptedProvider:
    """Answers with 12 + 7 tokens, or raises what it was told to; records the calls."""

    def __init__(self) -> None:
        self.calls: list[ProviderCall] = []
        self.failure: ProviderError | None = None

    def __call__(self, call: ProviderCall) -> ProviderResult:
        self.calls.append(call)
        if self.failure is not None:
            raise self.failure
        completion = ChatCompletion.model_validate(
            {
                "id": "c",
                "created": 0,
                "model": call.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
            }
        )
        return ProviderResult(completion=completion, rate_limit_headers={})


@pytest.fixture
def counters() -> InMemoryCapacityCounters:
    return InMemoryCapacityCounters()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def gateway(world: World, counters: InMemoryCapacityCounters, provider: ScriptedProvider) -> CompletionService:
    return CompletionService(
        world.connections, counters, CredentialCache(world.cipher), provider, lambda: NOW, 5.0, world.events
    )


def connection(world: World, **fields: Any) -> str:
    created = world.connection_service.create(
        world.admin(), world.scope, create_request(name="prod", provider="openai", config={"apiKey": "sk-1"}, **fields)
    )
    return created.connection_id


def ask(
    gateway: CompletionService, world: World, model: str = "prod/gpt-4o", ip: str = "192.0.2.1", **fields: Any
) -> Any:
    request = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "hello"}], **fields}
    )
    return gateway.complete(principal(world.scope.workspace_id, Role.GATEWAY), world.scope, request, ip)


def used(
    counters: InMemoryCapacityCounters, world: World, connection_id: str, ip: str | None = None
) -> list[tuple[int, int]]:
    stored = world.connections.get(world.scope.workspace_id, world.scope.environment_id, connection_id)
    assert stored is not None
    dimension = CapacityDimension.SOURCE_IP if ip else None
    usages = counters.usage(CounterScope(connection_id, ip), limits_for(stored.capacity, dimension), NOW)
    return [(usage.requests_used, usage.tokens_used) for usage in usages]


def test_the_provider_gets_its_own_model_id_and_the_opened_secret(
    gateway: CompletionService, world: World, provider: ScriptedProvider
) -> None:
    connection(world)

    outcome = ask(gateway, world)

    assert provider.calls[0].model == "gpt-4o"
    assert provider.calls[0].secrets["apiKey"].get_secret_value() == "sk-1"
    assert outcome.completion.model == "prod/gpt-4o"


def test_tokens_are_reserved_then_reconciled_to_the_reported_usage(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters
) -> None:
    connection_id = connection(world, capacity=[{"period": "minute", "requests": 5, "tokens": 10_000}])

    outcome = ask(gateway, world, max_tokens=100)

    assert used(counters, world, connection_id) == [(1, 19)]
    assert outcome.rate_limits.tokens is not None
    assert outcome.rate_limits.tokens.tokens_remaining == 10_000 - 19


def test_a_disallowed_model_moves_no_counter_and_calls_no_provider(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters, provider: ScriptedProvider
) -> None:
    connection_id = connection(world, allowedModels=["gpt-4o"], capacity=[{"period": "minute", "requests": 5}])

    with pytest.raises(Forbidden, match="allowed models: gpt-4o"):
        ask(gateway, world, model="prod/gpt-4o-mini")

    assert provider.calls == []
    assert used(counters, world, connection_id) == [(0, 0)]


def test_a_refusal_by_the_per_ip_window_undoes_the_connection_reservation(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters
) -> None:
    connection_id = connection(
        world,
        capacity=[
            {"period": "minute", "requests": 10, "tokens": 100_000},
            {"period": "day", "requests": 1, "dimension": "source-ip"},
        ],
    )
    ask(gateway, world)

    with pytest.raises(OverCapacity) as refused:
        ask(gateway, world)

    assert refused.value.message == "AI connection 'prod' reached its per-day limit of 1 requests"
    assert used(counters, world, connection_id) == [(1, 19)]
    assert used(counters, world, connection_id, "192.0.2.1") == [(1, 0)]


def test_a_failed_provider_call_counts_the_request_but_no_tokens(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters, provider: ScriptedProvider
) -> None:
    connection_id = connection(world, capacity=[{"period": "hour", "requests": 5, "tokens": 10_000}])
    provider.failure = ProviderError(429, "provider_rate_limited", "slow down", retry_after="3")

    with pytest.raises(ProviderFailure) as failed:
        ask(gateway, world, max_tokens=100)

    assert failed.value.error.retry_after == "3"
    assert used(counters, world, connection_id) == [(1, 0)]


def test_a_request_larger_than_the_limit_is_told_so_without_retry_after(
    gateway: CompletionService, world: World
) -> None:
    connection(world, capacity=[{"period": "minute", "tokens": 500}])

    with pytest.raises(OverCapacity) as refused:
        ask(gateway, world)

    assert refused.value.retry_after_seconds is None
    assert "lower max_tokens" in refused.value.message

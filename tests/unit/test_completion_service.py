"""The completion use case over fakes: what happens before, around and after the provider call."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from tests.capacity_fakes import InMemoryCapacityCounters, InMemorySettlementQueue
from tests.unit.builders import World, create_request, principal
from vmx.afterwards import Afterwards
from vmx.capacity.ledger import CounterScope, Reservation, limits_for
from vmx.capacity.limits import CapacityDimension
from vmx.completions.failures import not_connected
from vmx.completions.openai_models import ChatCompletion, ChatCompletionRequest
from vmx.completions.providers import ProviderCall, ProviderError, ProviderResult, ProviderStream
from vmx.credentials.errors import CredentialsUnavailable
from vmx.credentials.sealed import EncryptionContext, SealedSecret
from vmx.deadline import Deadline
from vmx.errors import Forbidden
from vmx.events.models import CompletionRecorded
from vmx.storage.errors import StorageUnavailable
from vmx.tenancy.models import Role
from vmx.use_cases.completions import CompletionOutcome, CompletionService, StreamOpener, StreamOutcome
from vmx.use_cases.credentials_cache import CredentialCache
from vmx.use_cases.refusals import DEFAULT_COMPLETION_TOKENS, OverCapacity, ProviderFailure

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
IDLE_TIMEOUT_SECONDS = 5.0


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


class UnavailableCipher:
    """A key service that cannot be reached: nothing can be opened."""

    def seal(self, secrets: Mapping[str, SecretStr], context: EncryptionContext) -> dict[str, SealedSecret]:
        raise CredentialsUnavailable("the key service is unreachable")

    def open(self, sealed: Mapping[str, SealedSecret], context: EncryptionContext) -> dict[str, SecretStr]:
        raise CredentialsUnavailable("the key service is unreachable")


class RecordingLog:
    """The log `Afterwards.run` reports failed work to."""

    def __init__(self) -> None:
        self.failed: list[dict[str, object] | None] = []

    def error(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None:
        self.failed.append(extra)

    def exception(self, msg: object, *args: object, extra: dict[str, object] | None = None) -> None:
        self.failed.append(extra)


def run_afterwards(afterwards: Afterwards) -> None:
    """What the handler does once the last byte has gone out; every step must succeed."""
    log = RecordingLog()
    afterwards.run(log, Deadline.after(60))
    assert log.failed == []


def no_streams(call: ProviderCall) -> ProviderStream:
    raise AssertionError("these tests ask for whole answers only")


def completion_service(
    world: World,
    counters: InMemoryCapacityCounters,
    provider: ScriptedProvider,
    open_stream: StreamOpener = no_streams,
    credentials: CredentialCache | None = None,
    settlements: InMemorySettlementQueue | None = None,
) -> CompletionService:
    return CompletionService(
        world.connections,
        counters,
        credentials or CredentialCache(world.cipher),
        provider,
        open_stream,
        lambda: NOW,
        IDLE_TIMEOUT_SECONDS,
        world.events,
        settlements or InMemorySettlementQueue(),
        settle_attempt_seconds=1.0,
        defer_seconds=1.0,
    )


@pytest.fixture
def counters() -> InMemoryCapacityCounters:
    return InMemoryCapacityCounters()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def gateway(world: World, counters: InMemoryCapacityCounters, provider: ScriptedProvider) -> CompletionService:
    return completion_service(world, counters, provider)


@pytest.fixture
def afterwards() -> Afterwards:
    # pauses between attempts are not waited out here (tests/unit/test_afterwards.py times them)
    return Afterwards(sleep=lambda seconds: None)


def connection(world: World, **fields: Any) -> str:
    created = world.connection_service.create(
        world.admin(), world.scope, create_request(name="prod", provider="openai", config={"apiKey": "sk-1"}, **fields)
    )
    return created.connection_id


def chat(model: str = "prod/gpt-4o", **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "hello"}], **fields}
    )


def ask(
    gateway: CompletionService,
    world: World,
    afterwards: Afterwards,
    model: str = "prod/gpt-4o",
    ip: str = "192.0.2.1",
    deadline: Deadline | None = None,
    **fields: Any,
) -> CompletionOutcome | StreamOutcome:
    return gateway.complete(
        principal(world.scope.workspace_id, Role.GATEWAY),
        world.scope,
        chat(model, **fields),
        ip,
        deadline or Deadline.after(60),
        afterwards,
    )


def ask_whole(gateway: CompletionService, world: World, afterwards: Afterwards, **fields: Any) -> CompletionOutcome:
    outcome = ask(gateway, world, afterwards, **fields)
    assert isinstance(outcome, CompletionOutcome)
    return outcome


def used(
    counters: InMemoryCapacityCounters, world: World, connection_id: str, ip: str | None = None
) -> list[tuple[int, int]]:
    stored = world.connections.get(world.scope.workspace_id, world.scope.environment_id, connection_id)
    assert stored is not None
    dimension = CapacityDimension.SOURCE_IP if ip else None
    usages = counters.usage(CounterScope(connection_id, ip), limits_for(stored.capacity, dimension), NOW)
    return [(usage.requests_used, usage.tokens_used) for usage in usages]


def recorded(world: World) -> list[CompletionRecorded]:
    return world.events.of_type(CompletionRecorded)


def test_the_provider_gets_its_own_model_id_and_the_opened_secret(
    gateway: CompletionService, world: World, provider: ScriptedProvider, afterwards: Afterwards
) -> None:
    connection(world)

    outcome = ask_whole(gateway, world, afterwards)

    assert provider.calls[0].model == "gpt-4o"
    assert provider.calls[0].secrets["apiKey"].get_secret_value() == "sk-1"
    assert outcome.completion.model == "prod/gpt-4o"


def test_a_whole_answer_may_take_the_time_left_before_the_deadline(
    gateway: CompletionService, world: World, provider: ScriptedProvider, afterwards: Afterwards
) -> None:
    connection(world)
    deadline = Deadline.after(60)

    ask_whole(gateway, world, afterwards, deadline=deadline)

    [call] = provider.calls
    assert call.deadline == deadline
    assert 59 < call.timeout_seconds <= 60


def test_tokens_are_reserved_then_reconciled_to_the_reported_usage(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters, afterwards: Afterwards
) -> None:
    connection_id = connection(world, capacity=[{"period": "minute", "requests": 5, "tokens": 10_000}])

    outcome = ask_whole(gateway, world, afterwards, max_tokens=100)
    run_afterwards(afterwards)

    assert used(counters, world, connection_id) == [(1, 19)]
    assert outcome.rate_limits.tokens is not None
    assert outcome.rate_limits.tokens.tokens_remaining == 10_000 - 19


def test_nothing_is_reconciled_or_published_until_the_answer_has_gone_out(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters, afterwards: Afterwards
) -> None:
    connection_id = connection(world, capacity=[{"period": "minute", "requests": 5, "tokens": 10_000}])
    # 3 to prime the reply, 4 for the message, 2 for "hello"; plus max_tokens
    reserved = 9 + 100

    ask_whole(gateway, world, afterwards, max_tokens=100)

    assert used(counters, world, connection_id) == [(1, reserved)]
    assert recorded(world) == []

    run_afterwards(afterwards)

    assert used(counters, world, connection_id) == [(1, 19)]
    [event] = recorded(world)
    assert (event.status, event.prompt_tokens, event.completion_tokens) == (200, 12, 7)
    assert (event.stream, event.stream_end, event.usage_estimated) == (False, None, False)


def test_a_disallowed_model_moves_no_counter_and_calls_no_provider(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    provider: ScriptedProvider,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, allowedModels=["gpt-4o"], capacity=[{"period": "minute", "requests": 5}])

    with pytest.raises(Forbidden, match="allowed models: gpt-4o"):
        ask(gateway, world, afterwards, model="prod/gpt-4o-mini")
    run_afterwards(afterwards)

    assert provider.calls == []
    assert used(counters, world, connection_id) == [(0, 0)]
    assert [(event.status, event.error_code) for event in recorded(world)] == [(403, "model_not_allowed")]


@pytest.mark.parametrize("stream", [False, True])
def test_credentials_that_cannot_be_opened_reserve_nothing(
    world: World, counters: InMemoryCapacityCounters, provider: ScriptedProvider, stream: bool
) -> None:
    connection_id = connection(
        world,
        capacity=[
            {"period": "minute", "requests": 5, "tokens": 10_000},
            {"period": "day", "requests": 5, "dimension": "source-ip"},
        ],
    )
    gateway = completion_service(world, counters, provider, credentials=CredentialCache(UnavailableCipher()))
    afterwards = Afterwards()

    with pytest.raises(CredentialsUnavailable):
        ask(gateway, world, afterwards, stream=stream)
    run_afterwards(afterwards)

    assert provider.calls == []
    assert used(counters, world, connection_id) == [(0, 0)]
    assert used(counters, world, connection_id, "192.0.2.1") == [(0, 0)]


def test_a_refusal_by_the_per_ip_window_undoes_the_connection_reservation(
    gateway: CompletionService, world: World, counters: InMemoryCapacityCounters, afterwards: Afterwards
) -> None:
    connection_id = connection(
        world,
        capacity=[
            {"period": "minute", "requests": 10, "tokens": 100_000},
            {"period": "day", "requests": 1, "dimension": "source-ip"},
        ],
    )
    ask(gateway, world, afterwards)
    run_afterwards(afterwards)

    with pytest.raises(OverCapacity) as refused:
        ask(gateway, world, afterwards)
    run_afterwards(afterwards)

    assert refused.value.message == "AI connection 'prod' reached its per-day limit of 1 requests"
    assert used(counters, world, connection_id) == [(1, 19)]
    assert used(counters, world, connection_id, "192.0.2.1") == [(1, 0)]
    assert [(event.status, event.refused_by_capacity) for event in recorded(world)] == [(200, False), (429, True)]


def test_a_failed_provider_call_counts_the_request_but_no_tokens(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    provider: ScriptedProvider,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, capacity=[{"period": "hour", "requests": 5, "tokens": 10_000}])
    provider.failure = ProviderError(429, "provider_rate_limited", "slow down", retry_after="3")

    with pytest.raises(ProviderFailure) as failed:
        ask(gateway, world, afterwards, max_tokens=100)
    run_afterwards(afterwards)

    assert failed.value.error.retry_after == "3"
    assert used(counters, world, connection_id) == [(1, 0)]
    assert [(event.status, event.error_code) for event in recorded(world)] == [(429, "provider_rate_limited")]


def test_a_request_larger_than_the_limit_is_told_so_without_retry_after(
    gateway: CompletionService, world: World, afterwards: Afterwards
) -> None:
    connection(world, capacity=[{"period": "minute", "tokens": 500}])

    with pytest.raises(OverCapacity) as refused:
        ask(gateway, world, afterwards)

    assert refused.value.retry_after_seconds is None
    assert "lower max_tokens" in refused.value.message


class FlakyCounters(InMemoryCapacityCounters):
    """Counters whose settling writes fail `failures` times each before they work (a throttled table)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.settle_attempts = 0

    def _fail_first(self) -> None:
        self.settle_attempts += 1
        if self.settle_attempts <= self.failures:
            raise StorageUnavailable("DynamoDB request failed (ThrottlingException)")

    def release(self, reservation: Reservation) -> None:
        self._fail_first()
        super().release(reservation)

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: datetime) -> None:
        self._fail_first()
        super().reconcile(reservation, actual_tokens, now)


def run_afterwards_failing(afterwards: Afterwards) -> RecordingLog:
    log = RecordingLog()
    afterwards.run(log, Deadline.after(60))
    return log


def test_a_reconcile_that_fails_at_first_is_tried_again_and_the_counters_end_exact(
    world: World, provider: ScriptedProvider, afterwards: Afterwards
) -> None:
    counters, settlements = FlakyCounters(failures=2), InMemorySettlementQueue()
    gateway = completion_service(world, counters, provider, settlements=settlements)
    connection_id = connection(world, capacity=[{"period": "hour", "requests": 5, "tokens": 10_000}])

    outcome = ask_whole(gateway, world, afterwards, max_tokens=100)
    log = run_afterwards_failing(afterwards)

    assert outcome.completion.usage.total_tokens == 19
    assert counters.settle_attempts == 3
    assert used(counters, world, connection_id) == [(1, 19)]
    assert (log.failed, settlements.kept) == ([], [])
    assert [event.status for event in recorded(world)] == [200]


def test_a_reconcile_that_keeps_failing_is_kept_for_later_with_the_tokens_really_used(
    world: World, provider: ScriptedProvider, afterwards: Afterwards
) -> None:
    counters, settlements = FlakyCounters(failures=1000), InMemorySettlementQueue()
    gateway = completion_service(world, counters, provider, settlements=settlements)
    connection_id = connection(
        world,
        capacity=[
            {"period": "hour", "requests": 5, "tokens": 10_000},
            {"period": "day", "requests": 5, "dimension": "source-ip"},
        ],
    )

    outcome = ask_whole(gateway, world, afterwards, max_tokens=100)
    log = run_afterwards_failing(afterwards)

    # the client has its answer; the counters still hold the reservation, and the settlements wait in the queue
    assert outcome.completion.usage.total_tokens == 19
    (reserved,) = used(counters, world, connection_id)
    assert reserved[0] == 1 and reserved[1] > 100
    kept = {(settlement.reservation.scope.source_ip, settlement.actual_tokens) for settlement in settlements.kept}
    # the per-IP scope counts no tokens: it is only settled
    assert kept == {(None, 19), ("192.0.2.1", 0)}
    assert [extra and extra["work"] for extra in log.failed] == ["reconcile", "reconcile"]
    assert [event.status for event in recorded(world)] == [200]

    # what the consumer later does with them: the counters end as if nothing had failed
    counters.failures = 0
    for settlement in settlements.kept:
        assert settlement.actual_tokens is not None
        counters.reconcile(settlement.reservation, settlement.actual_tokens, NOW)
    assert used(counters, world, connection_id) == [(1, 19)]
    assert used(counters, world, connection_id, "192.0.2.1") == [(1, 0)]


def test_a_release_after_a_refusal_that_keeps_failing_is_kept_for_later_and_the_refusal_stands(
    world: World, provider: ScriptedProvider, afterwards: Afterwards
) -> None:
    counters, settlements = FlakyCounters(failures=0), InMemorySettlementQueue()
    gateway = completion_service(world, counters, provider, settlements=settlements)
    connection_id = connection(
        world,
        capacity=[
            {"period": "minute", "requests": 10, "tokens": 100_000},
            {"period": "day", "requests": 1, "dimension": "source-ip"},
        ],
    )
    ask(gateway, world, afterwards)
    run_afterwards(afterwards)
    counters.failures, counters.settle_attempts = 1000, 0

    with pytest.raises(OverCapacity):
        ask(gateway, world, afterwards)
    run_afterwards_failing(afterwards)

    (kept,) = settlements.kept
    assert (kept.reservation.scope.source_ip, kept.actual_tokens) == (None, None)
    counters.failures = 0
    counters.release(kept.reservation)
    assert used(counters, world, connection_id) == [(1, 19)]


def test_a_provider_never_reached_gives_its_reservation_back(
    gateway: CompletionService,
    world: World,
    counters: InMemoryCapacityCounters,
    provider: ScriptedProvider,
    afterwards: Afterwards,
) -> None:
    connection_id = connection(world, capacity=[{"period": "day", "requests": 1, "tokens": 10_000}])
    provider.failure = not_connected("openai")

    for _ in range(3):
        with pytest.raises(ProviderFailure) as failed:
            ask(gateway, world, afterwards, max_tokens=100)
        run_afterwards(afterwards)

    assert failed.value.error.status == 502
    assert used(counters, world, connection_id) == [(0, 0)]
    assert [event.error_code for event in recorded(world)] == ["provider_unreachable"] * 3


def test_a_request_without_an_output_limit_is_sent_the_reserved_one_as_its_cap(
    gateway: CompletionService, world: World, provider: ScriptedProvider, afterwards: Afterwards
) -> None:
    connection(world, capacity=[{"period": "hour", "tokens": 100_000}])

    ask_whole(gateway, world, afterwards)
    ask_whole(gateway, world, afterwards, max_tokens=50)

    assert [call.request.output_token_limit for call in provider.calls] == [DEFAULT_COMPLETION_TOKENS, 50]
